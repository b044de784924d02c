"""The Dask executor (`executor: dask`): jobs run as tasks on a Dask cluster while the daemon stays the only
watcher, output writer and job-log writer.

`identity` (what a worker must match: ocrd version, model files, precision), `plugin` (the worker plugin
that loads the model set once per worker process and refuses a mismatched worker; the task function),
`connection` (the client: TLS, connecting and reconnecting, the plugin's registration, worker counts),
`executor` (`DaskExecutor`: the `ocrd.service.executor.Executor` the dispatcher uses: keys, starts,
timeouts, results written by the daemon, stale ones dropped). Layer 6, beside `http`: it may import the
service (the pure job function, the Executor protocol) and every layer below, never `http` or `cli`; the
CLI wires it into the daemon. The only importer of `distributed` (and `dask`, the pip extra `[dask]`).
"""

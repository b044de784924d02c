"""The running service: the daemon loop, start-up recovery, the worker pool and the per-file pipeline.

Also what health and metrics say (served by `ocrd.http`), the hand-off of uploads and requeues from
HTTP threads to the main loop, sd_notify, `ocrd check`, requeueing, and the workers' allocator
policy. This is where the packages below meet: it may import every other package (`config`,
`engine`, `intake`, `inbox`, `jobs`, `outputs`) and the top-level modules, and nothing imports it
but `ocrd.http` and the CLI. It is the only importer of `pebble` (the process pool) and `prometheus_client` (/metrics).
"""

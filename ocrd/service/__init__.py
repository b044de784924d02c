"""The running service: the daemon loop, start-up recovery, the worker pool and the per-file pipeline.

Also health and metrics over HTTP, sd_notify, `ocrd check`, requeueing, and the workers' allocator
policy. This is where the packages below meet: it may import every other package (`config`,
`engine`, `intake`, `inbox`, `jobs`, `outputs`) and the top-level modules, and nothing imports it
but the CLI. It is the only importer of `pebble` (the process pool) and `prometheus_client` (/metrics).
"""

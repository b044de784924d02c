"""The watched inbox folders: events and rescans, stability, ignore rules, mounts, claiming and moving files.

The watchdog handler only enqueues; the stability tracker decides when a file is completely
written; claiming renames a file into `.ocrd/work/` and later moves it to the archive or the
quarantine, never following a link out of a watched tree. It may import `ocrd.config`, `ocrd.errors`,
`ocrd.logs` and `ocrd.durable`; it is the only importer of `watchdog`.
"""

"""The job log and what a job is: rows and states, the SQLite schema and migrations, transitions, queries.

Also the plain job records the main process hands a worker and gets back (`records`), and sortable
job ids. The daemon's main process is the only writer; readers (`ocrd jobs`, `ocrd status`, sqlite3)
may read while it runs. It may import `ocrd.config` and `ocrd.errors`; it is the only importer of
`sqlite_utils`.
"""

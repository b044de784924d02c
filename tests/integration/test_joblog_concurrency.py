"""Integration test: a writer process drives jobs through the log while readers (JobLog.open_readonly and the
sqlite3 CLI) query it; readers never see an error or a half-done transition, and the writer is never blocked."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ocrd.jobs.log import JobLog

JOBS = 300

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ocrd.jobs.log import JobLog

    log = JobLog(Path(sys.argv[1]))
    for i in range(int(sys.argv[2])):
        job = log.add_queued("scans", f"a/{i}.jpg", f"/w/{i}.jpg", 10)
        log.start(job.id, str(i))
        log.finish_done(job.id, {"pages": 1, "lines": 2, "outputs": [f"/o/{i}.json"]})
    log.close()
    """
)


def test_readers_never_block_or_fail_while_the_writer_works(tmp_path: Path):
    db_path = tmp_path / "jobs.db"
    JobLog(db_path).close()  # schema in place before readers start
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db_path), str(JOBS)], stderr=subprocess.PIPE)
    sqlite3_cli = shutil.which("sqlite3")
    reads = 0
    try:
        with JobLog.open_readonly(db_path) as reader:
            while writer.poll() is None:
                status = reader.status()
                counts = status["counts"]
                # Each transition is one transaction: a reader never sees a job between states.
                assert counts["done"] + counts["queued"] + counts["running"] == status["total"]
                assert counts["queued"] + counts["running"] <= 1
                reads += 1
                if sqlite3_cli and reads % 20 == 0:
                    out = subprocess.run(
                        [sqlite3_cli, f"file:{db_path}?mode=ro", "select state, count(*) from jobs group by 1"],
                        capture_output=True, text=True, check=True, timeout=30,
                    )  # fmt: skip
                    assert "error" not in out.stderr.lower()
            final = reader.status()
    finally:
        if writer.poll() is None:
            writer.kill()
        _, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err.decode()
    assert final["counts"]["done"] == JOBS
    assert reads > 0


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="sqlite3 CLI not installed")
def test_sqlite3_cli_reads_the_log(tmp_path: Path):
    db_path = tmp_path / "jobs.db"
    with JobLog(db_path) as log:
        for i in range(3):
            log.add_queued("scans", f"{i}.jpg", f"/w/{i}.jpg", 1)
        out = subprocess.run(
            ["sqlite3", str(db_path), "select state, count(*) from jobs group by 1"],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
    assert out.stdout.strip() == "queued|3"

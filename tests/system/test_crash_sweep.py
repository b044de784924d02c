"""The CI-sized crash sweep (issue 7): a few SIGKILLs of the whole daemon at random moments while files
arrive, a restart after each, then every input exactly once in archive or quarantine, one complete
output set each, nothing partial or temporary visible, all rows terminal, the database sound.

The long version is `bench/crash_sweep.py --files 500 --kills 200` (docs/reliability.md).
`OCRD_SWEEP_FILES` / `OCRD_SWEEP_KILLS` scale this one.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "bench" / "crash_sweep.py"
_spec = importlib.util.spec_from_file_location("crash_sweep", _PATH)
crash_sweep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(crash_sweep)

FILES = int(os.environ.get("OCRD_SWEEP_FILES", "12"))
KILLS = int(os.environ.get("OCRD_SWEEP_KILLS", "3"))


def test_crash_sweep_loses_nothing(tmp_path):
    figures = crash_sweep.sweep(tmp_path, FILES, KILLS, max_delay_s=1.5, seed=3, log=lambda line: None)
    print(figures)
    assert figures["kills"] == KILLS
    assert figures["files_lost"] == 0, figures["details"]
    assert figures["duplicate_outputs"] == 0, figures["details"]
    assert figures["partial_outputs_visible"] == 0, figures["details"]
    assert figures["rows_not_terminal"] == 0, figures
    assert figures["integrity_ok"], figures
    assert figures["stop_exit_code"] == 0
    assert figures["rows"] == FILES, figures

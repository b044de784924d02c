"""`ocrd check` as a real subprocess: exit 0 / 78 / 69, one line per problem; and run_checks in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocrd.service.check import ProblemKind, check, run_checks
from ocrd.config.load import load_config

REPO = Path(__file__).resolve().parents[2]


def ocrd_check(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OCRD_CONFIG"}
    return subprocess.run([sys.executable, "-m", "ocrd", "check", "-c", str(config), *extra],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)  # fmt: skip


def write_config(tmp_path: Path, extra: str = "", *, inbox: str = "in/scans") -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"inboxes: [{{name: scans, path: {inbox}}}]\n"
        "outbox: out\narchive: archive\nquarantine: quarantine\nstate_dir: state\n" + extra
    )
    config.chmod(0o640)
    return config


def problem_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("ocrd check: ")]


def test_good_setup_exits_0_with_an_ok_summary_and_notes_for_dirs_to_create(tmp_path):
    (tmp_path / "in" / "scans").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    proc = ocrd_check(write_config(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.splitlines()[-1].startswith("ok: config ")
    assert "model set ppocrv6-small verified" in proc.stdout
    # Missing but creatable folders are fine, and said so; existing ones are not mentioned.
    assert f"note: archive {tmp_path / 'archive'} does not exist; `ocrd run` will create it" in proc.stdout
    assert "note: outbox" not in proc.stdout
    assert ocrd_check(write_config(tmp_path), "--quiet").stdout == ""


def test_int8_recognizer_state_is_a_note_never_a_problem(tmp_path, prepared_models):
    (tmp_path / "in" / "scans").mkdir(parents=True)
    proc = ocrd_check(write_config(tmp_path, "recognize: {precision: int8}\n"))
    assert proc.returncode == 0, proc.stderr
    # The session's INT8 recognizer is built (tests/conftest.py).
    assert f"note: INT8 recognizer ready: {prepared_models.model_set.rec.path}" in proc.stdout
    proc = ocrd_check(write_config(tmp_path, "recognize: {precision: int8}\ncache_dir: empty-cache\n"))
    assert proc.returncode == 0, proc.stderr
    assert f"note: INT8 recognizer not built yet: `ocrd run` builds it into {tmp_path / 'empty-cache'}" in proc.stdout
    assert f"note: INT8 detector not built yet: `ocrd run` builds it into {tmp_path / 'empty-cache'}" in proc.stdout
    assert "INT8 detector ready" in ocrd_check(write_config(tmp_path, "recognize: {precision: fp32}\n")).stdout
    fp32 = "recognize: {precision: fp32}\ndetect: {precision: fp32}\n"
    assert "INT8" not in ocrd_check(write_config(tmp_path, fp32)).stdout


def test_invalid_config_exits_78_with_one_line_per_problem(tmp_path):
    proc = ocrd_check(write_config(tmp_path, "on_success: shred\nworkers: {count: 0}\n"))
    assert proc.returncode == 78
    lines = problem_lines(proc)
    assert len(lines) == 2, proc.stderr
    assert any("on_success" in line for line in lines) and any("workers.count" in line for line in lines)
    assert all(line.startswith("ocrd check: config: ") for line in lines)


def test_missing_config_file_exits_78(tmp_path):
    proc = ocrd_check(tmp_path / "nope.yaml")
    assert proc.returncode == 78 and "config file not found" in proc.stderr


def test_world_writable_config_exits_78(tmp_path):
    config = write_config(tmp_path)
    config.chmod(0o666)
    proc = ocrd_check(config)
    assert proc.returncode == 78
    assert problem_lines(proc) == [
        f"ocrd check: config: {config}: config file is world-writable (mode 0666); run: chmod o-w {config}"
    ]


def test_output_dir_reaching_into_an_inbox_through_a_symlink_exits_78(tmp_path):
    # The paths as written do not overlap (config validation passes); the resolved ones do.
    (tmp_path / "in" / "scans").mkdir(parents=True)
    (tmp_path / "out").symlink_to(tmp_path / "in" / "scans" / "results", target_is_directory=True)
    proc = ocrd_check(write_config(tmp_path))
    assert proc.returncode == 78
    (line,) = [line for line in problem_lines(proc) if "inside inbox" in line]
    assert f"outbox {tmp_path / 'out'} (really {tmp_path / 'in' / 'scans' / 'results'})" in line


def test_inbox_inside_the_archive_exits_78(tmp_path):
    # Archived originals would land back in the inbox; the config's own check does not look this way round.
    proc = ocrd_check(write_config(tmp_path, inbox="archive/scans"))
    assert proc.returncode == 78
    assert any("inbox 'scans'" in line and "is inside archive" in line for line in problem_lines(proc))


def test_directory_that_cannot_be_created_exits_69(tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("quarantine: quarantine", "quarantine: blocker/quarantine"))
    proc = ocrd_check(config)
    assert proc.returncode == 69
    assert problem_lines(proc) == [
        f"ocrd check: unavailable: quarantine {tmp_path / 'blocker' / 'quarantine'} does not exist and cannot be "
        f"created: {tmp_path / 'blocker'} is not a directory; is the share mounted?"
    ]


def test_path_that_is_a_file_exits_69(tmp_path):
    (tmp_path / "out").write_text("")
    proc = ocrd_check(write_config(tmp_path))
    assert proc.returncode == 69
    assert problem_lines(proc) == [f"ocrd check: unavailable: outbox {tmp_path / 'out'} is not a directory"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere: permission bits cannot make a folder unwritable")
def test_unwritable_directory_exits_69(tmp_path):
    (tmp_path / "in" / "scans").mkdir(parents=True)
    (tmp_path / "in" / "scans").chmod(0o555)
    try:
        proc = ocrd_check(write_config(tmp_path))
    finally:
        (tmp_path / "in" / "scans").chmod(0o755)
    assert proc.returncode == 69
    assert any("inbox 'scans'" in line and "is not readable and writable" in line for line in problem_lines(proc))


def test_missing_model_exits_69(tmp_path):
    missing = tmp_path / "missing-det.onnx"
    proc = ocrd_check(write_config(tmp_path, f"detect: {{model: {missing}}}\n"))
    assert proc.returncode == 69
    assert problem_lines(proc) == [f"ocrd check: unavailable: det model file not found: {missing}"]


def test_config_problems_outrank_unavailable_ones(tmp_path):
    (tmp_path / "out").write_text("")
    config = write_config(tmp_path)
    config.chmod(0o646)
    proc = ocrd_check(config)
    assert proc.returncode == 78
    assert {line.split(":")[1].strip() for line in problem_lines(proc)} == {"config", "unavailable"}


def test_run_checks_returns_typed_problems_in_process(tmp_path):
    (tmp_path / "out").write_text("")
    config = write_config(tmp_path)
    problems = run_checks(load_config(config), config)
    assert [(p.kind, p.message) for p in problems] == [(ProblemKind.UNAVAILABLE, f"outbox {tmp_path / 'out'} is not a directory")]
    report = check(config)
    assert report.exit_code == 69 and report.problems == problems

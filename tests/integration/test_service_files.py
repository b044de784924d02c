"""The systemd unit, sysusers/tmpfiles, logrotate config and install.sh, checked with the real tools.

Each tool-based test skips with the tool's name when it is not installed
(.ci/run installs them as root on Debian). Nothing here needs a running systemd.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ocrd.config.load import load_config

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "ocrd.service"
SYSUSERS = ROOT / "systemd" / "ocrd.sysusers"
TMPFILES = ROOT / "systemd" / "ocrd.tmpfiles"
LOGROTATE = ROOT / "logrotate" / "ocrd"
INSTALL = ROOT / "systemd" / "install.sh"
UNIT_BINARY = "/opt/ocrd/.venv/bin/ocrd"
MAX_EXPOSURE = 1.5  # DESIGN.md section 8


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install systemd logrotate; .ci/run does this as root)")
    return path


def need_root(why: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"needs root: {why}")


def unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


# --------------------------------------------------------------------------- the unit's contract


def test_unit_has_the_contracted_settings():
    s = unit_settings(UNIT.read_text())
    assert s["Type"] == ["notify"]
    assert s["ExecStartPre"] == [f"{UNIT_BINARY} check -c /etc/ocrd/config.yaml"]
    assert s["ExecStart"] == [f"{UNIT_BINARY} run -c /etc/ocrd/config.yaml"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["Restart"] == ["on-failure"]
    assert s["RestartPreventExitStatus"] == ["78"]
    assert s["KillMode"] == ["mixed"]
    assert s["User"] == ["ocrd"] and s["Group"] == ["ocrd"]
    assert s["CapabilityBoundingSet"] == [""]
    assert "MemoryDenyWriteExecute" not in s  # left out on purpose: see the comment in the unit
    # Stopping lets jobs finish: the stop timeout must exceed the default job timeout.
    job_timeout_s = load_config(None).workers.job_timeout_s
    assert int(s["TimeoutStopSec"][0]) > job_timeout_s
    assert int(s["WatchdogSec"][0]) >= 30


def test_logrotate_config_has_the_contracted_settings():
    text = LOGROTATE.read_text()
    for directive in ("daily", "rotate 14", "compress", "delaycompress", "missingok", "notifempty",
                      "create 0640 ocrd ocrd", "postrotate"):  # fmt: skip
        assert re.search(rf"^\s*{directive}\s*$", text, re.M), directive
    assert text.startswith("#") and "/var/log/ocrd/*.log {" in text


# --------------------------------------------------------------------------- systemd-analyze


def exposure_of(unit: Path, cwd: Path) -> float:
    tool = need("systemd-analyze")
    proc = subprocess.run([tool, "security", "--offline=true", str(unit)], capture_output=True, text=True, cwd=cwd)
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", proc.stdout + proc.stderr)
    assert match, f"no exposure level in systemd-analyze output:\n{proc.stdout}\n{proc.stderr}"
    return float(match.group(1))


def test_exposure_level_is_at_most_1_5(tmp_path):
    level = exposure_of(UNIT, tmp_path)
    assert level <= MAX_EXPOSURE, f"systemd-analyze security rates ocrd.service {level} (> {MAX_EXPOSURE})"


def test_exposure_check_would_catch_a_weakened_unit(tmp_path):
    # The measurement above is not vacuous: dropping the hardening block raises the level well past the limit.
    weak = tmp_path / "ocrd.service"
    kept = [line for line in UNIT.read_text().splitlines()
            if not re.match(r"(Protect|Private|Restrict|SystemCall|Capability|NoNewPrivileges|IPAddress)", line)]  # fmt: skip
    weak.write_text("\n".join(kept) + "\n")
    assert exposure_of(weak, tmp_path) > MAX_EXPOSURE


def test_systemd_analyze_verify_finds_no_errors(tmp_path):
    tool = need("systemd-analyze")
    # The unit names the installed binary; point a copy at one that exists here so verify
    # checks everything else (syntax, unknown keys, bad values).
    unit = tmp_path / "ocrd.service"
    unit.write_text(UNIT.read_text().replace(UNIT_BINARY, sys.executable))
    proc = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, cwd=tmp_path)
    # Lines about other units on this machine (or its missing systemd) are not ours to judge.
    ours = [line for line in proc.stderr.splitlines() if "ocrd.service" in line]
    assert not ours, "\n".join(ours)


def test_verify_would_catch_a_typo(tmp_path):
    tool = need("systemd-analyze")
    unit = tmp_path / "ocrd.service"
    unit.write_text(UNIT.read_text().replace(UNIT_BINARY, sys.executable).replace("ProtectHome=yes", "ProtectHom=yes"))
    proc = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, cwd=tmp_path)
    assert "ProtectHom" in proc.stderr


# --------------------------------------------------------------------------- sysusers / tmpfiles


def test_sysusers_then_tmpfiles_build_the_tree_in_a_temp_root(tmp_path):
    need_root("systemd-tmpfiles sets owners")
    sysusers, tmpfiles = need("systemd-sysusers"), need("systemd-tmpfiles")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    subprocess.run([sysusers, f"--root={root}", str(SYSUSERS)], check=True, capture_output=True, text=True)
    passwd = (root / "etc" / "passwd").read_text()
    entry = next(line for line in passwd.splitlines() if line.startswith("ocrd:"))
    _, _, uid, gid, gecos, home, shell = entry.split(":")
    assert home == "/var/lib/ocrd" and "nologin" in shell and gecos == "ocrd OCR daemon"
    proc = subprocess.run([tmpfiles, f"--root={root}", "--create", str(TMPFILES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    expected = {
        "etc/ocrd": (0o750, 0, int(gid)),
        "srv/ocrd/inbox/scans": (0o2770, int(uid), int(gid)),
        "srv/ocrd/outbox": (0o2750, int(uid), int(gid)),
        "srv/ocrd/archive": (0o2750, int(uid), int(gid)),
        "srv/ocrd/quarantine": (0o2750, int(uid), int(gid)),
        "var/lib/ocrd": (0o750, int(uid), int(gid)),
        "var/log/ocrd": (0o750, int(uid), int(gid)),
        "var/cache/ocrd": (0o750, int(uid), int(gid)),
    }
    for rel, (mode, owner, group) in expected.items():
        st = (root / rel).stat()
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (mode, owner, group), rel


# --------------------------------------------------------------------------- logrotate


def logrotate_copy(tmp_path: Path, log_dir: Path, postrotate: str | None = None) -> Path:
    """logrotate/ocrd with the log path in `log_dir`, this user instead of ocrd, and an optional postrotate."""
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    text = LOGROTATE.read_text().replace("/var/log/ocrd/", f"{log_dir}/")
    text = text.replace("create 0640 ocrd ocrd", f"create 0640 {user} {group}").replace("su ocrd ocrd", f"su {user} {group}")
    if postrotate is not None:
        text = re.sub(r"postrotate\n.*?endscript", f"postrotate\n        {postrotate}\n    endscript", text, flags=re.S)
    conf = tmp_path / "logrotate.conf"
    conf.write_text(text)
    conf.chmod(0o644)
    return conf


def test_logrotate_debug_run_accepts_the_config(tmp_path):
    tool = need("logrotate")
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o750)
    (log_dir / "ocrd.log").write_text('{"event": "x"}\n')
    conf = logrotate_copy(tmp_path, log_dir)
    proc = subprocess.run([tool, "-d", "-f", "-s", str(tmp_path / "state"), str(conf)], capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "error:" not in out.lower(), out
    assert f"rotating log {log_dir}/ocrd.log" in out or "rotating pattern" in out, out


def test_logrotate_debug_run_would_catch_a_bad_directive(tmp_path):
    tool = need("logrotate")
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o750)
    conf = logrotate_copy(tmp_path, log_dir)
    conf.write_text(conf.read_text().replace("daily", "dayly"))
    proc = subprocess.run([tool, "-d", "-s", str(tmp_path / "state"), str(conf)], capture_output=True, text=True)
    assert proc.returncode != 0 or "error" in (proc.stdout + proc.stderr).lower()


# --------------------------------------------------------------------------- install.sh


def test_install_script_stages_everything_into_destdir_idempotently(tmp_path):
    root = tmp_path / "root"
    for _ in range(2):  # twice: the second run must succeed and change nothing that matters
        proc = subprocess.run(["sh", str(INSTALL), "--destdir", str(root), "--prefix", "/opt/ocrd-test"],
                              capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    assert "kept existing /etc/ocrd/config.yaml" in proc.stdout
    unit = (root / "etc/systemd/system/ocrd.service").read_text()
    assert "ExecStart=/opt/ocrd-test/.venv/bin/ocrd run -c /etc/ocrd/config.yaml" in unit
    assert "ExecStartPre=/opt/ocrd-test/.venv/bin/ocrd check -c /etc/ocrd/config.yaml" in unit
    assert (root / "etc/sysusers.d/ocrd.conf").read_text() == SYSUSERS.read_text()
    assert (root / "etc/tmpfiles.d/ocrd.conf").read_text() == TMPFILES.read_text()
    assert (root / "etc/logrotate.d/ocrd").read_text() == LOGROTATE.read_text()
    assert (root / "opt/ocrd-test/docs/operations.md").is_file()
    config = root / "etc/ocrd/config.yaml"
    assert config.stat().st_mode & 0o777 == 0o640
    cfg = load_config(config)  # the written config is valid and matches the tmpfiles/unit layout
    assert [str(i.path) for i in cfg.inboxes] == ["/srv/ocrd/inbox/scans"]
    assert str(cfg.outbox) == "/srv/ocrd/outbox" and str(cfg.state_dir) == "/var/lib/ocrd"
    assert cfg.http.enabled is False


def test_install_script_never_overwrites_a_config(tmp_path):
    root = tmp_path / "root"
    (root / "etc/ocrd").mkdir(parents=True)
    (root / "etc/ocrd/config.yaml").write_text("outbox: /data/out\n")
    subprocess.run(["sh", str(INSTALL), f"--destdir={root}"], check=True, capture_output=True)
    assert (root / "etc/ocrd/config.yaml").read_text() == "outbox: /data/out\n"
    assert "/opt/ocrd/.venv/bin/ocrd run" in (root / "etc/systemd/system/ocrd.service").read_text()


def test_install_script_refuses_unknown_options(tmp_path):
    proc = subprocess.run(["sh", str(INSTALL), "--destdir", str(tmp_path), "--bogus"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown option --bogus" in proc.stderr


# --------------------------------------------------------------------------- the Dask units (issue 17)

DASK_UNITS = [ROOT / "systemd" / "ocrd-dask-scheduler.service", ROOT / "systemd" / "ocrd-dask-worker.service"]
DASK_BINARY = "/opt/ocrd/.venv/bin/dask"


@pytest.mark.parametrize("unit", DASK_UNITS, ids=lambda p: p.stem)
def test_dask_unit_restarts_always_as_ocrd_and_runs_the_installed_dask(unit):
    s = unit_settings(unit.read_text())
    assert s["ExecStart"][0].startswith(f"{DASK_BINARY} ")
    # `dask worker` exits when its scheduler is lost, a scheduler may die: both must come back by themselves.
    assert s["Restart"] == ["always"]
    assert s["User"] == ["ocrd"] and s["CapabilityBoundingSet"] == [""]
    assert s["EnvironmentFile"] == ["-/etc/ocrd/dask.env"]


def test_the_worker_unit_runs_one_thread_per_process_with_a_nanny():
    text = (ROOT / "systemd" / "ocrd-dask-worker.service").read_text()
    assert "--nthreads 1" in text and "--no-nanny" not in text  # the nanny restarts a worker stuck past its timeout
    assert "MemoryDenyWriteExecute" not in unit_settings(text)  # onnxruntime: see ocrd.service


@pytest.mark.parametrize("unit", DASK_UNITS, ids=lambda p: p.stem)
def test_dask_unit_verifies_and_is_hardened(unit, tmp_path):
    tool = need("systemd-analyze")
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(DASK_BINARY, sys.executable))
    proc = subprocess.run([tool, "verify", str(copy)], capture_output=True, text=True, cwd=tmp_path)
    ours = [line for line in proc.stderr.splitlines() if unit.name in line]
    assert not ours, "\n".join(ours)
    level = exposure_of(copy, tmp_path)
    assert level <= MAX_EXPOSURE, f"systemd-analyze security rates {unit.name} {level} (> {MAX_EXPOSURE})"


@pytest.mark.parametrize("unit", DASK_UNITS, ids=lambda p: p.stem)
def test_dask_unit_checks_would_catch_a_typo_and_a_weakened_unit(unit, tmp_path):
    tool = need("systemd-analyze")
    typo = tmp_path / unit.name
    typo.write_text(unit.read_text().replace(DASK_BINARY, sys.executable).replace("ProtectHome=yes", "ProtectHom=yes"))
    proc = subprocess.run([tool, "verify", str(typo)], capture_output=True, text=True, cwd=tmp_path)
    assert "ProtectHom" in proc.stderr
    kept = [line for line in unit.read_text().splitlines()
            if not re.match(r"(Protect|Private|Restrict|SystemCall|Capability|NoNewPrivileges)", line)]  # fmt: skip
    typo.write_text("\n".join(kept) + "\n")
    assert exposure_of(typo, tmp_path) > MAX_EXPOSURE

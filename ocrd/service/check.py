"""`ocrd check`: everything `ocrd run` needs, checked before it starts; returns problems, never prints or exits.

Run by the systemd unit as ExecStartPre, as the service user inside the same
sandbox, so "writable" means writable for the daemon. Each problem is one line
a person can act on; its kind picks the exit code (config 78, unavailable 69).
"""

from __future__ import annotations

import os
import socket
import stat
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from ocrd.config.load import load_config
from ocrd.config.schema import Config
from ocrd.engine.int8.cache import CacheState, cache_dir_for, cache_state
from ocrd.engine.models import ModelFile, model_set_from_config
from ocrd.errors import ConfigError, ExitCode, OcrdError


class ProblemKind(StrEnum):
    CONFIG = "config"  # fix the config file or its permissions: exit 78, systemd does not restart
    UNAVAILABLE = "unavailable"  # a directory or model is missing or unusable: exit 69


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    message: str


@dataclass
class CheckReport:
    """What `ocrd check` found: problems, notes (fine, but worth saying) and what was checked."""

    config_path: Path | None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    directories: int = 0
    models: list[str] = field(default_factory=list)
    model_set: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        if any(p.kind is ProblemKind.CONFIG for p in self.problems):
            return ExitCode.BAD_CONFIG
        if self.problems:
            return ExitCode.UNAVAILABLE
        return ExitCode.OK


def check(config_path: Path | None) -> CheckReport:
    """Load the config (the first check: each ConfigError line is a problem), then run_checks on it."""
    report = CheckReport(config_path)
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        report.problems += [Problem(ProblemKind.CONFIG, line) for line in exc.problems]
        return report
    report.problems += run_checks(cfg, config_path, report=report)
    return report


def run_checks(cfg: Config, config_path: Path | None, *, report: CheckReport | None = None) -> list[Problem]:
    """Every check on an already loaded config; `report`, when given, also collects notes and counts."""
    report = report if report is not None else CheckReport(config_path)
    problems: list[Problem] = []
    if config_path is not None:
        problems += _check_config_file(Path(config_path))
    problems += _check_nesting(cfg)
    problems += _check_directories(cfg, report)
    problems += _check_http(cfg)
    problems += _check_executor(cfg)
    problems += _check_models(cfg, report)
    return problems


def _check_executor(cfg: Config) -> list[Problem]:
    """`executor: dask`: the extra installed and the TLS files readable (the scheduler itself may start later)."""
    if cfg.executor != "dask":
        return []
    import importlib.util  # find_spec only: the service never imports distributed (ocrd.cluster does)

    problems = []
    if importlib.util.find_spec("distributed") is None:
        problems.append(Problem(ProblemKind.UNAVAILABLE,
                                "executor: dask needs the Dask extra: pip install 'ocrd-daemon[dask]'"))  # fmt: skip
    for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        path = getattr(cfg.dask, key)
        if path is not None and not os.access(path, os.R_OK):
            problems.append(Problem(ProblemKind.UNAVAILABLE, f"dask.{key} {path} is missing or not readable by this user"))
    return problems


def _check_http(cfg: Config) -> list[Problem]:
    """The listener `ocrd run` will open: the address must be bindable now (ExecStartPre runs before it)."""
    if not cfg.http.enabled:
        return []
    host, port = cfg.http.address()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
            probe.bind((host, port))
    except OSError as exc:
        return [Problem(ProblemKind.UNAVAILABLE,
                        f"http.listen {cfg.http.listen}: cannot listen there: {exc.strerror or exc} "
                        "(another program, or a running ocrd, holds the port; or the address is not this host's)")]  # fmt: skip
    return []


# --------------------------------------------------------------------------- config file


def _check_config_file(path: Path) -> list[Problem]:
    """Anyone who can rewrite the config can point ocrd at any folder the service can write."""
    problems = []
    try:
        st = path.stat()
    except OSError as exc:  # load_config read it a moment ago; report, do not crash
        return [Problem(ProblemKind.CONFIG, f"{path}: cannot stat config file: {exc.strerror}")]
    if st.st_mode & stat.S_IWOTH:
        problems.append(Problem(
            ProblemKind.CONFIG,
            f"{path}: config file is world-writable (mode {stat.S_IMODE(st.st_mode):04o}); run: chmod o-w {path}",
        ))  # fmt: skip
    parent = path.absolute().parent
    try:
        pst = parent.stat()
    except OSError:
        return problems
    if pst.st_mode & stat.S_IWOTH and not pst.st_mode & stat.S_ISVTX:
        problems.append(Problem(
            ProblemKind.CONFIG,
            f"{parent}: the config file's folder is world-writable, so anyone can replace {path.name}; "
            f"run: chmod o-w {parent}",
        ))  # fmt: skip
    return problems


# --------------------------------------------------------------------------- layout


def _real(path: Path) -> Path:
    # Resolves every symlink in the part that exists; a missing tail is kept as written.
    return Path(os.path.realpath(path))


def _check_nesting(cfg: Config) -> list[Problem]:
    """The config validates overlaps on the paths as written; symlinks and bind mounts can hide one.

    Refused: a directory ocrd writes (outbox, archive, quarantine, state_dir)
    inside an inbox, an inbox inside a directory ocrd writes (its own files
    would come back as input), and two inboxes overlapping.
    """
    problems = []
    written = {"outbox": cfg.outbox, "archive": cfg.archive, "quarantine": cfg.quarantine, "state_dir": cfg.state_dir}
    for inbox in cfg.inboxes:
        inbox_real = _real(inbox.path)
        shown = inbox.path if inbox_real == inbox.path else f"{inbox.path} (really {inbox_real})"
        for key, path in written.items():
            real = _real(path)
            where = path if real == path else f"{path} (really {real})"
            if real == inbox_real or (inbox.recursive and real.is_relative_to(inbox_real)):
                problems.append(Problem(
                    ProblemKind.CONFIG,
                    f"{key} {where} is inside inbox '{inbox.name}' {shown}: ocrd would read its own files",
                ))  # fmt: skip
            elif key != "state_dir" and inbox_real.is_relative_to(real):
                problems.append(Problem(
                    ProblemKind.CONFIG,
                    f"inbox '{inbox.name}' {shown} is inside {key} {where}: files ocrd writes there could "
                    "come back as input",
                ))  # fmt: skip
    for i, a in enumerate(cfg.inboxes):
        for b in cfg.inboxes[i + 1 :]:
            ra, rb = _real(a.path), _real(b.path)
            if ra == rb or (a.recursive and rb.is_relative_to(ra)) or (b.recursive and ra.is_relative_to(rb)):
                problems.append(Problem(
                    ProblemKind.CONFIG,
                    f"inboxes '{a.name}' ({ra}) and '{b.name}' ({rb}) overlap: a file could be claimed twice",
                ))  # fmt: skip
    return problems


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def _check_directory(label: str, path: Path, report: CheckReport, *, readable: bool = False) -> list[Problem]:
    """A directory ocrd writes: it exists and is writable, or `ocrd run` can create it."""
    if path.is_dir():
        wanted = os.W_OK | os.X_OK | (os.R_OK if readable else 0)
        if not os.access(path, wanted):
            need = "readable and writable" if readable else "writable"
            return [Problem(ProblemKind.UNAVAILABLE, f"{label} {path} is not {need} by this user (uid {os.geteuid()})")]
        report.directories += 1
        return []
    if path.exists() or path.is_symlink():
        what = "a dangling symlink" if path.is_symlink() and not path.exists() else "not a directory"
        return [Problem(ProblemKind.UNAVAILABLE, f"{label} {path} is {what}")]
    ancestor = _nearest_existing(path.parent)
    if ancestor.is_dir() and os.access(ancestor, os.W_OK | os.X_OK):
        report.notes.append(f"{label} {path} does not exist; `ocrd run` will create it (in {ancestor})")
        report.directories += 1
        return []
    why = "is not a directory" if not ancestor.is_dir() else f"is not writable by this user (uid {os.geteuid()})"
    return [Problem(
        ProblemKind.UNAVAILABLE,
        f"{label} {path} does not exist and cannot be created: {ancestor} {why}; is the share mounted?",
    )]  # fmt: skip


def _check_directories(cfg: Config, report: CheckReport) -> list[Problem]:
    problems = []
    for inbox in cfg.inboxes:
        # ocrd claims a file by renaming it into <inbox>/.ocrd/work: the inbox itself must be writable.
        problems += _check_directory(f"inbox '{inbox.name}'", inbox.path, report, readable=True)
    problems += _check_directory("outbox", cfg.outbox, report)
    # Checked whatever on_success says: `ocrd run` creates all four at start.
    problems += _check_directory("archive", cfg.archive, report)
    problems += _check_directory("quarantine", cfg.quarantine, report)
    problems += _check_directory("state_dir", cfg.state_dir, report)
    db = cfg.state_dir / "jobs.db"
    if db.exists() and not os.access(db, os.R_OK | os.W_OK):
        problems.append(Problem(ProblemKind.UNAVAILABLE, f"job log {db} is not readable and writable by this user"))
    log_file = cfg.logging.file
    if log_file is not None:
        problems += _check_directory("logging.file's folder", log_file.parent, report)
        if log_file.exists() and not os.access(log_file, os.W_OK):
            problems.append(Problem(ProblemKind.UNAVAILABLE, f"log file {log_file} is not writable by this user"))
    return problems


# --------------------------------------------------------------------------- models


def _check_models(cfg: Config, report: CheckReport) -> list[Problem]:
    try:
        model_set = model_set_from_config(cfg)
    except OcrdError as exc:
        return [Problem(ProblemKind.UNAVAILABLE, str(exc))]
    report.model_set = model_set.name
    problems = []
    digests: dict[str, str] = {}
    for model_file in model_set.files():
        try:
            digests[model_file.role] = model_file.verify()
        except OcrdError as exc:
            problems.append(Problem(ProblemKind.UNAVAILABLE, str(exc)))
        else:
            report.models.append(model_file.role)
    if not problems:
        for source, precision in ((model_set.rec, cfg.recognize.precision), (model_set.det, cfg.detect.precision)):
            if precision == "int8":
                report.notes.append(_int8_note(cfg, source, digests[source.role]))
    return problems


def _int8_note(cfg: Config, source: ModelFile, source_sha256: str) -> str:
    """Whether the INT8 copy of `source` is ready; never a problem (the daemon builds it, or falls back to FP32)."""
    what = {"rec": "recognizer", "det": "detector"}[source.role]
    cache_dir = cache_dir_for(cfg)
    state, found, _ = cache_state(cache_dir, source, source_sha256)
    if state is CacheState.READY:
        return f"INT8 {what} ready: {found.path}"  # type: ignore[union-attr]
    if state is CacheState.DAMAGED:
        return f"INT8 {what} {found.path} does not match its record; `ocrd run` rebuilds it (one to two minutes)"  # type: ignore[union-attr]
    if not _writable_or_creatable(cache_dir):
        return (f"INT8 {what} not built and cache_dir {cache_dir} is not writable: "
                f"`ocrd run` will use the slower FP32 {what}")  # fmt: skip
    return f"INT8 {what} not built yet: `ocrd run` builds it into {cache_dir} at start (one to two minutes, once)"


def _writable_or_creatable(path: Path) -> bool:
    while not path.exists():
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)

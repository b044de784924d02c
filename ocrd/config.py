"""Frozen configuration objects, config-file loading and strict validation; the only importer of `yaml`.

Every key is declared once, as a dataclass field whose metadata holds its
validation rule (`_key(default, Rule)`); the loader walks those declarations,
so adding a key is one line. Values from a file and built-in defaults go
through the same rules, so defaults are validated and paths resolved alike.
Nothing here touches the file system except `load_config` reading the file
and `resolve_config_path` checking for `./config.yaml`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from ocrd.errors import ConfigError

ENV_VAR = "OCRD_CONFIG"
DEFAULT_FILE_NAME = "config.yaml"


# --------------------------------------------------------------------------- rules


def _show(value: Any) -> str:
    """Render a bad value the way the user wrote it in YAML (true, null, 'text')."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, Path):
        return repr(str(value))
    return repr(value)


def _num(x: float) -> str:
    return f"{x:g}"


class _Invalid(Exception):
    """Internal: one rule rejected one value; the message lacks the key path."""


class _Rule:
    """Checks one raw value and returns the typed value, or raises _Invalid."""

    def parse(self, value: Any, where: str, base_dir: Path, problems: list[str]) -> Any:
        # Leaf rules raise _Invalid; composite rules (sections, lists) append
        # their own problems so that nested key paths stay exact.
        return self.check(value, base_dir)

    def check(self, value: Any, base_dir: Path) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class _Bool(_Rule):
    def check(self, value: Any, base_dir: Path) -> bool:
        if not isinstance(value, bool):
            raise _Invalid(f"must be true or false, got {_show(value)}")
        return value


def _range_text(lo: float | None, hi: float | None, lo_open: bool) -> str:
    if lo is not None and hi is not None:
        if lo_open:
            return f"> {_num(lo)} and <= {_num(hi)}"
        return f"between {_num(lo)} and {_num(hi)}"
    if lo is not None:
        return f"> {_num(lo)}" if lo_open else f">= {_num(lo)}"
    if hi is not None:
        return f"<= {_num(hi)}"
    return ""


@dataclass(frozen=True, eq=False, repr=False)
class _Int(_Rule):
    lo: int | None = None
    hi: int | None = None

    def check(self, value: Any, base_dir: Path) -> int:
        # bool is a subclass of int; `workers: {count: true}` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            rng = _range_text(self.lo, self.hi, False)
            raise _Invalid(f"must be an integer{' ' + rng if rng else ''}, got {_show(value)}")
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise _Invalid(f"must be {_range_text(self.lo, self.hi, False)}, got {value}")
        return value


@dataclass(frozen=True, eq=False, repr=False)
class _Float(_Rule):
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # True: the lower bound itself is not allowed (e.g. > 0)

    def check(self, value: Any, base_dir: Path) -> float:
        rng = _range_text(self.lo, self.hi, self.lo_open)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _Invalid(f"must be a number{' ' + rng if rng else ''}, got {_show(value)}")
        too_low = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        too_high = self.hi is not None and value > self.hi
        if too_low or too_high:
            raise _Invalid(f"must be {rng}, got {_show(value)}")
        return float(value)


@dataclass(frozen=True, eq=False, repr=False)
class _IntOrAuto(_Rule):
    lo: int = 1

    def check(self, value: Any, base_dir: Path) -> int | str:
        if value == "auto":
            return "auto"
        if isinstance(value, bool) or not isinstance(value, int) or value < self.lo:
            raise _Invalid(f"must be auto or an integer >= {self.lo}, got {_show(value)}")
        return value


class _Choice(_Rule):
    def __init__(self, *allowed: str):
        self.allowed = allowed

    def check(self, value: Any, base_dir: Path) -> str:
        if not isinstance(value, str) or value not in self.allowed:
            raise _Invalid(f"must be one of {', '.join(self.allowed)}, got {_show(value)}")
        return value


@dataclass(frozen=True, eq=False, repr=False)
class _Text(_Rule):
    pattern: str | None = None  # full-match regex
    meaning: str = "a non-empty string"

    def check(self, value: Any, base_dir: Path) -> str:
        ok = isinstance(value, str) and value != ""
        if ok and self.pattern is not None:
            ok = re.fullmatch(self.pattern, value) is not None
        if not ok:
            raise _Invalid(f"must be {self.meaning}, got {_show(value)}")
        return value


@dataclass(frozen=True, eq=False, repr=False)
class _Path(_Rule):
    optional: bool = False

    def check(self, value: Any, base_dir: Path) -> Path | None:
        if value is None and self.optional:
            return None
        if not isinstance(value, (str, os.PathLike)) or str(value) == "":
            wanted = "a path or null" if self.optional else "a path"
            raise _Invalid(f"must be {wanted}, got {_show(value)}")
        path = Path(value).expanduser()
        # Relative paths mean "next to the config file" (or the cwd for the
        # built-in defaults): the daemon's cwd under systemd is not the user's.
        return path if path.is_absolute() else base_dir / path


@dataclass(frozen=True, eq=False, repr=False)
class _FloatTuple(_Rule):
    length: int
    positive: bool = False  # std values divide, so zero is not allowed
    optional: bool = False

    def check(self, value: Any, base_dir: Path) -> tuple[float, ...] | None:
        if value is None and self.optional:
            return None
        wanted = f"a list of {self.length} {'numbers > 0' if self.positive else 'numbers'}"
        if not isinstance(value, (list, tuple)) or len(value) != self.length:
            raise _Invalid(f"must be {wanted}, got {_show(value)}")
        for x in value:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise _Invalid(f"must be {wanted}, got {_show(value)}")
            if self.positive and x <= 0:
                raise _Invalid(f"must be {wanted}, got {_show(value)}")
        return tuple(float(x) for x in value)


class _HostPort(_Rule):
    def check(self, value: Any, base_dir: Path) -> str:
        wanted = f"host:port with port 1..65535 (e.g. '127.0.0.1:9478'), got {_show(value)}"
        if not isinstance(value, str):
            raise _Invalid(f"must be {wanted}")
        host, sep, port = value.rpartition(":")
        if host.startswith("[") and host.endswith("]"):  # [::1]:9478
            host = host[1:-1]
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise _Invalid(f"must be {wanted}")
        return value


@dataclass(frozen=True, eq=False, repr=False)
class _Section(_Rule):
    """A nested mapping parsed into the dataclass `cls` by its field declarations."""

    cls: type

    def parse(self, value: Any, where: str, base_dir: Path, problems: list[str]) -> Any:
        return _parse_section(self.cls, value, where, base_dir, problems)


@dataclass(frozen=True, eq=False, repr=False)
class _InboxList(_Rule):
    def parse(self, value: Any, where: str, base_dir: Path, problems: list[str]) -> Any:
        if not isinstance(value, (list, tuple)) or not value:
            problems.append(f"{where}: must be a list of at least one inbox, got {_show(value)}")
            return None
        inboxes = [
            _parse_section(InboxConfig, item, f"{where}[{i}]", base_dir, problems)
            for i, item in enumerate(value)
        ]
        # Checked on the raw names so a duplicate is reported even when the
        # entries have other problems too.
        first_seen: dict[str, int] = {}
        for i, item in enumerate(value):
            name = item.get("name") if isinstance(item, Mapping) else getattr(item, "name", None)
            if not isinstance(name, str):
                continue
            if name in first_seen:
                problems.append(
                    f"{where}[{i}].name: must be unique, got {name!r} "
                    f"(also {where}[{first_seen[name]}].name)"
                )
            else:
                first_seen[name] = i
        if any(inbox is None for inbox in inboxes):
            return None
        return tuple(inboxes)


def _key(default: Any = MISSING, rule: _Rule | None = None) -> Any:
    """Declare one config key: its built-in default (MISSING = required) and its rule."""
    return field(default=default, metadata={"rule": rule})


def _section(cls: type) -> Any:
    return field(default_factory=cls, metadata={"rule": _Section(cls)})


# --------------------------------------------------------------------------- config objects

_NAME_PATTERN = r"[A-Za-z0-9_-]+"


@dataclass(frozen=True, slots=True)
class InboxConfig:
    """One watched folder; `name` names its sub-folders in outbox/archive/quarantine and its job-log rows."""

    name: str = _key(rule=_Text(_NAME_PATTERN, "a name of letters, digits, _ and -"))
    path: Path = _key(rule=_Path())
    recursive: bool = _key(True, _Bool())
    watch: str = _key("auto", _Choice("auto", "inotify", "poll"))
    settle_s: float = _key(2.0, _Float(0, lo_open=True))


_MAX_AUTO_WORKERS = 8  # beyond this, memory grows faster than throughput on typical servers


def pool_shape(cpus: int, count: int | str, threads: int | str) -> tuple[int, int]:
    """Return (worker processes, ONNX intra-op threads per worker) for `cpus` cores.

    Why: one page's work is many small recognition calls that parallelise
    poorly inside one ONNX session, while files are independent. Measured on 2
    cores (docs/benchmarks.md): 2 workers x 1 thread process 1.7x the images of
    1 worker x 2 threads. "auto" therefore runs one worker per core, up to 8
    (each worker holds its own models, about 300 MB), and shares any remaining
    cores out as threads, keeping processes * threads <= cpus. An explicit value
    is used as given.
    """
    cpus = max(1, cpus)
    workers = min(cpus, _MAX_AUTO_WORKERS) if count == "auto" else int(count)
    per_worker = max(1, cpus // workers) if threads == "auto" else int(threads)
    return workers, per_worker


@dataclass(frozen=True, slots=True)
class WorkersConfig:
    """The worker process pool: size, per-job timeout and recycling limits."""

    count: int | str = _key("auto", _IntOrAuto())
    intra_op_threads: int | str = _key("auto", _IntOrAuto())
    job_timeout_s: float = _key(300.0, _Float(0, lo_open=True))
    max_jobs_per_worker: int = _key(500, _Int(1))
    max_rss_mb: int = _key(1500, _Int(1))
    # Off: a worker gives each page's memory back after the job (flat RSS). On: a few % faster, RSS climbs (measured).
    reuse_freed_memory: bool = _key(False, _Bool())

    def resolved_count(self, cpus: int) -> int:
        return pool_shape(cpus, self.count, self.intra_op_threads)[0]

    def resolved_threads(self, cpus: int) -> int:
        return pool_shape(cpus, self.count, self.intra_op_threads)[1]


@dataclass(frozen=True, slots=True)
class IntakeConfig:
    """Limits the file gate enforces before anything is decoded in full."""

    max_bytes: int = _key(200 * 1024 * 1024, _Int(1))
    max_pixels: int = _key(50_000_000, _Int(1))
    max_side_px: int = _key(30_000, _Int(1))
    max_pages: int = _key(100, _Int(1))
    pdf_dpi: int = _key(200, _Int(72, 600))
    young_file_s: float = _key(60.0, _Float(0))  # a truncated file younger than this may still be copying


@dataclass(frozen=True, slots=True)
class DetectConfig:
    """DB text detection: input scaling, normalisation, thresholds and box post-processing."""

    model: Path | None = _key(None, _Path(optional=True))  # custom ONNX overrides the model set's
    limit_side_px: int = _key(1280, _Int(32, 8192))
    limit_type: str = _key("max", _Choice("max", "min"))
    max_side_px: int = _key(4000, _Int(32, 16384))  # cap for limit_type=min
    max_upscale: float = _key(2.0, _Float(1, 8))  # limit_type=max: small pages grow by at most this
    thresh: float = _key(0.3, _Float(0, 1))
    box_thresh: float = _key(0.5, _Float(0, 1))
    unclip_ratio: float = _key(1.4, _Float(0, 5, lo_open=True))
    max_candidates: int = _key(1000, _Int(1))
    min_size_px: int = _key(3, _Int(1))
    dilate: bool = _key(False, _Bool())
    # null: the model set's own normalisation; set both for a custom detector.
    mean: tuple[float, float, float] | None = _key(None, _FloatTuple(3, optional=True))
    std: tuple[float, float, float] | None = _key(None, _FloatTuple(3, positive=True, optional=True))


@dataclass(frozen=True, slots=True)
class ClassifyConfig:
    """Text-line orientation classifier (0 / 180 degrees)."""

    enabled: bool = _key(True, _Bool())
    model: Path | None = _key(None, _Path(optional=True))
    thresh: float = _key(0.9, _Float(0, 1))
    batch_size: int = _key(6, _Int(1, 256))
    # The widest lines are classified first; the rest only when one of them is upside down.
    screen_lines: int = _key(6, _Int(0, 4096))
    input_width_px: int = _key(192, _Int(8, 4096))
    input_height_px: int = _key(48, _Int(8, 1024))


@dataclass(frozen=True, slots=True)
class RecognizeConfig:
    """CTC text recognition: input size, batching, charset and the confidence floor."""

    model: Path | None = _key(None, _Path(optional=True))
    charset: Path | None = _key(None, _Path(optional=True))  # only when the model embeds none
    input_height_px: int = _key(48, _Int(8, 1024))
    max_width_px: int = _key(3200, _Int(8, 32768))
    batch_size: int = _key(6, _Int(1, 256))
    max_stretch: float = _key(0.05, _Float(0, 1))  # widen crops by up to this to share a batch
    precision: str = _key("int8", _Choice("int8", "fp32"))  # int8: a quantized copy built once (ocrd.int8)
    min_confidence: float = _key(0.5, _Float(0, 1))  # lines below are dropped
    mean: float = _key(0.5, _Float())
    std: float = _key(0.5, _Float(0, lo_open=True))


@dataclass(frozen=True, slots=True)
class OutputsConfig:
    """Which result files are written per input, and the visualization's format and size."""

    json: bool = _key(True, _Bool())
    text: bool = _key(True, _Bool())
    visualization: bool = _key(True, _Bool())
    vis_format: str = _key("jpg", _Choice("jpg", "png"))
    vis_max_side_px: int = _key(2000, _Int(16, 30_000))


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """Log rendering, level and the optional file sink."""

    format: str = _key("auto", _Choice("auto", "json", "console"))
    level: str = _key("info", _Choice("debug", "info", "warning", "error"))
    file: Path | None = _key(None, _Path(optional=True))


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The optional local status endpoint."""

    enabled: bool = _key(False, _Bool())
    listen: str = _key("127.0.0.1:9478", _HostPort())

    def address(self) -> tuple[str, int]:
        """`listen` split into (host, port); brackets around an IPv6 host are removed."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


def _default_inboxes() -> tuple[InboxConfig, ...]:
    return (InboxConfig(name="scans", path=Path("var/inbox/scans")),)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration. Build it with load_config/default_config so paths are absolute."""

    inboxes: tuple[InboxConfig, ...] = field(
        default_factory=_default_inboxes, metadata={"rule": _InboxList()}
    )
    outbox: Path = _key(Path("var/outbox"), _Path())
    archive: Path = _key(Path("var/archive"), _Path())
    quarantine: Path = _key(Path("var/quarantine"), _Path())
    state_dir: Path = _key(Path("var/state"), _Path())
    cache_dir: Path | None = _key(None, _Path(optional=True))  # derived files; None: see ocrd.int8.cache_dir_for
    on_success: str = _key("archive", _Choice("archive", "delete", "keep"))
    duplicates: str = _key("skip", _Choice("skip", "reprocess"))
    max_attempts: int = _key(3, _Int(1))
    rescan_interval_s: float = _key(60.0, _Float(0, lo_open=True))
    model_set: str = _key("ppocrv6-small", _Text())  # the models module checks the name
    workers: WorkersConfig = _section(WorkersConfig)
    intake: IntakeConfig = _section(IntakeConfig)
    detect: DetectConfig = _section(DetectConfig)
    classify: ClassifyConfig = _section(ClassifyConfig)
    recognize: RecognizeConfig = _section(RecognizeConfig)
    outputs: OutputsConfig = _section(OutputsConfig)
    logging: LoggingConfig = _section(LoggingConfig)
    http: HttpConfig = _section(HttpConfig)

    def with_outbox(self, path: str | os.PathLike[str]) -> Config:
        """A copy writing results to `path` (for `ocrd process -o`), relative to the cwd."""
        return replace(self, outbox=Path(path).expanduser().absolute())


# --------------------------------------------------------------------------- parsing


def _parse_section(cls: type, value: Any, where: str, base_dir: Path, problems: list[str]) -> Any:
    """Parse `value` into `cls`, appending every problem found; None when any was found."""
    prefix = f"{where}." if where else ""
    if value is None:
        value = {}  # a section with all its keys commented out means "defaults"
    elif isinstance(value, cls):
        value = {f.name: getattr(value, f.name) for f in fields(cls)}
    elif not isinstance(value, Mapping):
        problems.append(f"{where or '(top level)'}: must be a mapping of keys, got {_show(value)}")
        return None

    known = [f.name for f in fields(cls)]
    for raw_key in value:
        if raw_key in known:
            continue
        import difflib  # only when a key is unknown: keeps read-only commands' start-up short

        close = difflib.get_close_matches(str(raw_key), known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"allowed: {', '.join(known)}"
        problems.append(f"{prefix}{raw_key}: unknown key ({hint})")

    before = len(problems)
    parsed: dict[str, Any] = {}
    for f in fields(cls):
        rule: _Rule = f.metadata["rule"]
        if f.name in value:
            raw = value[f.name]
        elif f.default is not MISSING:
            raw = f.default
        elif f.default_factory is not MISSING:
            raw = f.default_factory()
        else:
            problems.append(f"{prefix}{f.name}: required key is missing")
            continue
        try:
            parsed[f.name] = rule.parse(raw, prefix + f.name, base_dir, problems)
        except _Invalid as exc:
            problems.append(f"{prefix}{f.name}: {exc}")
    if len(problems) > before or any(k not in known for k in value):
        return None
    return cls(**parsed)


def _check_path_overlaps(config: Config, problems: list[str]) -> None:
    """Refuse layouts where ocrd would pick up its own outputs or claim a file twice."""
    others = {
        "outbox": config.outbox,
        "archive": config.archive,
        "quarantine": config.quarantine,
        "state_dir": config.state_dir,
    }
    for i, inbox in enumerate(config.inboxes):
        for key, path in others.items():
            inside = path == inbox.path or (inbox.recursive and path.is_relative_to(inbox.path))
            if inside:
                problems.append(
                    f"inboxes[{i}].path: must not contain {key} ({path}), "
                    "or ocrd would process its own files"
                )
        for j, other in enumerate(config.inboxes):
            if j <= i:
                continue
            a, b = inbox, other
            overlap = (
                a.path == b.path
                or (a.recursive and b.path.is_relative_to(a.path))
                or (b.recursive and a.path.is_relative_to(b.path))
            )
            if overlap:
                problems.append(
                    f"inboxes[{j}].path: overlaps inboxes[{i}].path ({a.path}), "
                    "so a file could be claimed by two inboxes"
                )


def config_from_mapping(data: Mapping[str, Any] | None, base_dir: Path) -> Config:
    """Validate a parsed config mapping; relative paths resolve against `base_dir`.

    Raises ConfigError listing every problem, one line per key path.
    """
    problems: list[str] = []
    config = _parse_section(Config, data, "", Path(base_dir).absolute(), problems)
    if config is not None:
        _check_path_overlaps(config, problems)
    if problems:
        raise ConfigError(problems)
    return config


def default_config() -> Config:
    """The built-in defaults, with relative paths resolved against the current directory."""
    return config_from_mapping({}, Path.cwd())


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which PyYAML would silently let the last one win."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: Path | None) -> Config:
    """Load and validate the config file at `path`, or the built-in defaults when None.

    Relative paths inside the file resolve against the file's directory. A
    missing or unreadable file, bad YAML and invalid keys all raise ConfigError.
    """
    if path is None:
        return default_config()
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = exc.problem or exc.context or "syntax error"
        raise ConfigError(f"{where}: invalid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    return config_from_mapping(data, path.absolute().parent)


def resolve_config_path(cli_value: str | None, env: Mapping[str, str]) -> Path | None:
    """Pick the config file: `-c` value, else $OCRD_CONFIG, else ./config.yaml if present, else None.

    None means the built-in defaults. Empty strings count as unset. An explicit
    choice is returned even when the file is missing, so load_config reports it.
    """
    if cli_value:
        return Path(cli_value)
    if env.get(ENV_VAR):
        return Path(env[ENV_VAR])
    candidate = Path.cwd() / DEFAULT_FILE_NAME
    return candidate if candidate.is_file() else None

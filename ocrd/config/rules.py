"""How one config value is checked, converted and described when wrong: the value rules, `key`/`section` and the section walk.

A rule turns one raw value (from YAML or a built-in default) into its typed
value or rejects it with a message that lacks only the key path;
`parse_section` walks a dataclass's `key` declarations and adds the paths.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any


def show_value(value: Any) -> str:
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


class Rule:
    """Checks one raw value and returns the typed value, or raises _Invalid."""

    def parse(self, value: Any, where: str, base_dir: Path, problems: list[str]) -> Any:
        # Leaf rules raise _Invalid; composite rules (sections, lists) append
        # their own problems so that nested key paths stay exact.
        return self.check(value, base_dir)

    def check(self, value: Any, base_dir: Path) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class Bool(Rule):
    def check(self, value: Any, base_dir: Path) -> bool:
        if not isinstance(value, bool):
            raise _Invalid(f"must be true or false, got {show_value(value)}")
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
class Int(Rule):
    lo: int | None = None
    hi: int | None = None

    def check(self, value: Any, base_dir: Path) -> int:
        # bool is a subclass of int; `workers: {count: true}` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            rng = _range_text(self.lo, self.hi, False)
            raise _Invalid(f"must be an integer{' ' + rng if rng else ''}, got {show_value(value)}")
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise _Invalid(f"must be {_range_text(self.lo, self.hi, False)}, got {value}")
        return value


@dataclass(frozen=True, eq=False, repr=False)
class Float(Rule):
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # True: the lower bound itself is not allowed (e.g. > 0)

    def check(self, value: Any, base_dir: Path) -> float:
        rng = _range_text(self.lo, self.hi, self.lo_open)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _Invalid(f"must be a number{' ' + rng if rng else ''}, got {show_value(value)}")
        too_low = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        too_high = self.hi is not None and value > self.hi
        if too_low or too_high:
            raise _Invalid(f"must be {rng}, got {show_value(value)}")
        return float(value)


@dataclass(frozen=True, eq=False, repr=False)
class IntOrAuto(Rule):
    lo: int = 1

    def check(self, value: Any, base_dir: Path) -> int | str:
        if value == "auto":
            return "auto"
        if isinstance(value, bool) or not isinstance(value, int) or value < self.lo:
            raise _Invalid(f"must be auto or an integer >= {self.lo}, got {show_value(value)}")
        return value


class Choice(Rule):
    def __init__(self, *allowed: str, optional: bool = False):
        self.allowed = allowed
        self.optional = optional  # null allowed

    def check(self, value: Any, base_dir: Path) -> str | None:
        if value is None and self.optional:
            return None
        if not isinstance(value, str) or value not in self.allowed:
            wanted = ", ".join(self.allowed) + (" or null" if self.optional else "")
            raise _Invalid(f"must be one of {wanted}, got {show_value(value)}")
        return value


@dataclass(frozen=True, eq=False, repr=False)
class Text(Rule):
    pattern: str | None = None  # full-match regex
    meaning: str = "a non-empty string"
    optional: bool = False  # null allowed

    def check(self, value: Any, base_dir: Path) -> str | None:
        if value is None and self.optional:
            return None
        ok = isinstance(value, str) and value != ""
        if ok and self.pattern is not None:
            ok = re.fullmatch(self.pattern, value) is not None
        if not ok:
            meaning = f"{self.meaning} or null" if self.optional else self.meaning
            raise _Invalid(f"must be {meaning}, got {show_value(value)}")
        return value


@dataclass(frozen=True, eq=False, repr=False)
class FsPath(Rule):
    optional: bool = False

    def check(self, value: Any, base_dir: Path) -> Path | None:
        if value is None and self.optional:
            return None
        if not isinstance(value, (str, os.PathLike)) or str(value) == "":
            wanted = "a path or null" if self.optional else "a path"
            raise _Invalid(f"must be {wanted}, got {show_value(value)}")
        path = Path(value).expanduser()
        # Relative paths mean "next to the config file" (or the cwd for the
        # built-in defaults): the daemon's cwd under systemd is not the user's.
        return path if path.is_absolute() else base_dir / path


@dataclass(frozen=True, eq=False, repr=False)
class FloatTuple(Rule):
    length: int
    positive: bool = False  # std values divide, so zero is not allowed
    optional: bool = False

    def check(self, value: Any, base_dir: Path) -> tuple[float, ...] | None:
        if value is None and self.optional:
            return None
        wanted = f"a list of {self.length} {'numbers > 0' if self.positive else 'numbers'}"
        if not isinstance(value, (list, tuple)) or len(value) != self.length:
            raise _Invalid(f"must be {wanted}, got {show_value(value)}")
        for x in value:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise _Invalid(f"must be {wanted}, got {show_value(value)}")
            if self.positive and x <= 0:
                raise _Invalid(f"must be {wanted}, got {show_value(value)}")
        return tuple(float(x) for x in value)


class HostPort(Rule):
    def check(self, value: Any, base_dir: Path) -> str:
        wanted = f"host:port with port 1..65535 (e.g. '127.0.0.1:9478'), got {show_value(value)}"
        if not isinstance(value, str):
            raise _Invalid(f"must be {wanted}")
        host, sep, port = value.rpartition(":")
        if host.startswith("[") and host.endswith("]"):  # [::1]:9478
            host = host[1:-1]
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise _Invalid(f"must be {wanted}")
        return value


@dataclass(frozen=True, eq=False, repr=False)
class SchedulerAddress(Rule):
    """A Dask scheduler address: tcp://host:port or tls://host:port (Dask's own spelling), or null."""

    optional: bool = True

    def check(self, value: Any, base_dir: Path) -> str | None:
        if value is None and self.optional:
            return None
        wanted = f"tcp://host:port or tls://host:port (e.g. 'tls://10.0.0.5:8786'), got {show_value(value)}"
        if not isinstance(value, str):
            raise _Invalid(f"must be {wanted}")
        scheme, sep, rest = value.partition("://")
        if scheme not in ("tcp", "tls") or not sep:
            raise _Invalid(f"must be {wanted}")
        try:
            HostPort().check(rest, base_dir)  # the host:port rule of http.listen, worded for this key
        except _Invalid:
            raise _Invalid(f"must be {wanted}") from None
        return value


class HostNames(Rule):
    """A list of host names (or IP addresses) a client may call the server by; `*` allows any."""

    _NAME = re.compile(r"\*|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?")

    def check(self, value: Any, base_dir: Path) -> tuple[str, ...]:
        wanted = f"a list of host names or addresses (or '*' for any), got {show_value(value)}"
        if not isinstance(value, (list, tuple)) or not value:
            raise _Invalid(f"must be {wanted}")
        if not all(isinstance(v, str) and self._NAME.fullmatch(v) for v in value):
            raise _Invalid(f"must be {wanted}")
        return tuple(v.strip("[]").lower() for v in value)


@dataclass(frozen=True, eq=False, repr=False)
class Section(Rule):
    """A nested mapping parsed into the dataclass `cls` by its field declarations."""

    cls: type

    def parse(self, value: Any, where: str, base_dir: Path, problems: list[str]) -> Any:
        return parse_section(self.cls, value, where, base_dir, problems)


def key(default: Any = MISSING, rule: Rule | None = None) -> Any:
    """Declare one config key: its built-in default (MISSING = required) and its rule."""
    return field(default=default, metadata={"rule": rule})


def section(cls: type) -> Any:
    return field(default_factory=cls, metadata={"rule": Section(cls)})


def parse_section(cls: type, value: Any, where: str, base_dir: Path, problems: list[str]) -> Any:
    """Parse `value` into `cls`, appending every problem found; None when any was found."""
    prefix = f"{where}." if where else ""
    if value is None:
        value = {}  # a section with all its keys commented out means "defaults"
    elif isinstance(value, cls):
        value = {f.name: getattr(value, f.name) for f in fields(cls)}
    elif not isinstance(value, Mapping):
        problems.append(f"{where or '(top level)'}: must be a mapping of keys, got {show_value(value)}")
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
        rule: Rule = f.metadata["rule"]
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

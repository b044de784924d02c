"""Building a validated Config: from a mapping, from the built-in defaults or from a YAML file, and choosing that file; the only importer of `yaml`.

Nothing here touches the file system except `load_config` reading the file
and `resolve_config_path` checking for `./config.yaml`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ocrd.config.rules import parse_section
from ocrd.config.schema import PROFILES, Config
from ocrd.errors import ConfigError

ENV_VAR = "OCRD_CONFIG"
DEFAULT_FILE_NAME = "config.yaml"


def _check_executor(config: Config, problems: list[str]) -> None:
    """`executor: dask` needs a scheduler; tls:// needs all three TLS files, and they mean nothing over tcp://."""
    d = config.dask
    tls_files = {"dask.tls_ca_file": d.tls_ca_file, "dask.tls_cert_file": d.tls_cert_file,
                 "dask.tls_key_file": d.tls_key_file}  # fmt: skip
    if config.executor == "dask" and d.scheduler is None:
        problems.append("dask.scheduler: required with executor: dask (e.g. 'tls://10.0.0.5:8786')")
    if d.scheduler is not None and d.scheduler.startswith("tls://"):
        problems.extend(f"{name}: required with a tls:// scheduler" for name, path in tls_files.items() if path is None)
    elif any(path is not None for path in tls_files.values()):
        problems.append("dask.scheduler: TLS files are set, so the address must start with tls://")


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
    config = parse_section(Config, data, "", Path(base_dir).absolute(), problems)
    if config is not None:
        _check_path_overlaps(config, problems)
        _check_executor(config, problems)
    if problems:
        raise ConfigError(problems)
    return _with_profile(config)


def _with_profile(config: Config) -> Config:
    """The profile's model set and precisions in the keys left null; a value given explicitly always wins."""
    profile = PROFILES[config.profile]
    return replace(
        config,
        model_set=config.model_set or profile.model_set,
        detect=replace(config.detect, precision=config.detect.precision or profile.detect_precision),
        recognize=replace(config.recognize, precision=config.recognize.precision or profile.recognize_precision),
    )


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

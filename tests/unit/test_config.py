"""Unit tests for ocrd.config: defaults, config.yaml, strict validation, resolution order."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from ocrd.config.load import config_from_mapping, default_config, load_config, resolve_config_path
from ocrd.config.schema import Config, DetectConfig, InboxConfig, WorkersConfig, pool_shape
from ocrd.errors import ConfigError, ExitCode

REPO_ROOT = Path(__file__).resolve().parents[2]


def problems_of(data: dict, base_dir: Path = Path("/base")) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(data, base_dir)
    return info.value.problems


def key_paths(cls: type = Config, prefix: str = "") -> list[str]:
    """Every dotted key path declared by the config dataclasses (inboxes as inboxes.<key>)."""
    out = []
    for f in dataclasses.fields(cls):
        path = prefix + f.name
        out.append(path)
        if isinstance(f.default_factory, type) and dataclasses.is_dataclass(f.default_factory):
            out += key_paths(f.default_factory, path + ".")
    if cls is Config:
        out += key_paths(InboxConfig, "inboxes.")
    return out


# --------------------------------------------------------------------------- defaults


def test_default_config_resolves_paths_against_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = default_config()
    assert cfg.outbox == tmp_path / "var/outbox"
    assert cfg.archive == tmp_path / "var/archive"
    assert cfg.quarantine == tmp_path / "var/quarantine"
    assert cfg.state_dir == tmp_path / "var/state"
    assert cfg.inboxes == (InboxConfig(name="scans", path=tmp_path / "var/inbox/scans"),)


def test_default_values():
    cfg = default_config()
    assert cfg.on_success == "archive"
    assert cfg.duplicates == "skip"
    assert cfg.max_attempts == 3
    assert cfg.model_set == "ppocrv6-small"
    assert cfg.workers.count == "auto" and cfg.workers.job_timeout_s == 300
    assert cfg.intake.max_bytes == 200 * 1024 * 1024
    assert cfg.detect.limit_side_px == 1280 and cfg.detect.box_thresh == 0.5
    assert cfg.detect.mean is None and cfg.detect.std is None  # the model set's own
    assert cfg.detect.model is None
    assert cfg.classify.enabled is True
    assert cfg.recognize.min_confidence == 0.5
    assert cfg.outputs.vis_format == "jpg"
    assert cfg.logging.level == "info"
    assert cfg.http.enabled is False and cfg.http.address() == ("127.0.0.1", 9478)


def test_config_is_frozen():
    cfg = default_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.outbox = Path("/x")  # type: ignore[misc]


def test_with_outbox_replaces_only_outbox(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = default_config()
    new = cfg.with_outbox("out")
    assert new.outbox == tmp_path / "out"
    assert dataclasses.replace(new, outbox=cfg.outbox) == cfg


# --------------------------------------------------------------------------- config.yaml


def test_repo_config_yaml_equals_defaults(monkeypatch):
    # config.yaml sits in the repo root, so its ./var paths resolve against the
    # repo root; the defaults resolve against the cwd: make them the same dir.
    monkeypatch.chdir(REPO_ROOT)
    assert load_config(REPO_ROOT / "config.yaml") == default_config()


def test_repo_config_yaml_differs_from_defaults_only_in_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from_file = load_config(REPO_ROOT / "config.yaml")
    defaults = default_config()
    assert from_file.outbox == REPO_ROOT / "var/outbox" != defaults.outbox
    assert from_file == config_from_mapping({}, REPO_ROOT)


def test_repo_config_yaml_lists_every_key():
    raw = yaml.safe_load((REPO_ROOT / "config.yaml").read_text(encoding="utf-8"))
    missing = []
    for path in key_paths():
        node = raw
        parts = path.split(".")
        if parts[0] == "inboxes" and len(parts) > 1:
            node, parts = raw["inboxes"][0], parts[1:]
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                missing.append(path)
                break
            node = node[part]
    assert missing == []


def test_docs_mention_every_key():
    doc = (REPO_ROOT / "docs/config.md").read_text(encoding="utf-8")
    sections = {
        f.name
        for f in dataclasses.fields(Config)
        if isinstance(f.default_factory, type) and dataclasses.is_dataclass(f.default_factory)
    }
    missing_sections = [name for name in sorted(sections) if f"\n## {name}\n" not in doc]
    # Leaf keys appear as `key` in their section's table.
    missing_keys = [p for p in key_paths() if p not in sections and f"`{p.rsplit('.', 1)[-1]}`" not in doc]
    assert missing_sections == [] and missing_keys == []


# --------------------------------------------------------------------------- values


def test_valid_values_are_typed(tmp_path):
    cfg = config_from_mapping(
        {
            "workers": {"count": 4, "intra_op_threads": "auto", "job_timeout_s": 10},
            "detect": {"mean": [0, 0.5, 1], "box_thresh": 1, "model": "models/det.onnx"},
            "http": {"listen": "[::1]:8080"},
        },
        tmp_path,
    )
    assert cfg.workers.count == 4
    assert cfg.workers.job_timeout_s == 10.0 and isinstance(cfg.workers.job_timeout_s, float)
    assert cfg.detect.mean == (0.0, 0.5, 1.0) and isinstance(cfg.detect.mean, tuple)
    assert cfg.detect.box_thresh == 1.0
    assert cfg.detect.model == tmp_path / "models/det.onnx"
    assert cfg.http.address() == ("::1", 8080)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"detect": {"box_thresh": 1.7}}, "detect.box_thresh: must be between 0 and 1, got 1.7"),
        ({"detect": {"unclip_ratio": 0}}, "detect.unclip_ratio: must be > 0 and <= 5, got 0"),
        ({"detect": {"limit_side_px": 16}}, "detect.limit_side_px: must be between 32 and 8192, got 16"),
        ({"detect": {"limit_type": "avg"}}, "detect.limit_type: must be one of max, min, got 'avg'"),
        ({"detect": {"mean": [0.5, 0.5]}}, "detect.mean: must be a list of 3 numbers, got [0.5, 0.5]"),
        ({"detect": {"std": [0.2, 0, 0.2]}}, "detect.std: must be a list of 3 numbers > 0, got [0.2, 0, 0.2]"),
        ({"detect": {"thresh": "high"}}, "detect.thresh: must be a number between 0 and 1, got 'high'"),
        ({"workers": {"job_timeout_s": float("inf")}}, "workers.job_timeout_s: must be a number > 0, got inf"),
        ({"detect": {"dilate": "yes please"}}, "detect.dilate: must be true or false, got 'yes please'"),
        ({"intake": {"pdf_dpi": 1200}}, "intake.pdf_dpi: must be between 72 and 600, got 1200"),
        ({"intake": {"max_pages": 2.5}}, "intake.max_pages: must be an integer >= 1, got 2.5"),
        ({"workers": {"count": 0}}, "workers.count: must be auto or an integer >= 1, got 0"),
        ({"workers": {"count": "many"}}, "workers.count: must be auto or an integer >= 1, got 'many'"),
        ({"on_success": "move"}, "on_success: must be one of archive, delete, keep, got 'move'"),
        ({"model_set": ""}, "model_set: must be a non-empty string or null, got ''"),
        ({"outbox": None}, "outbox: must be a path, got null"),
        ({"outbox": 5}, "outbox: must be a path, got 5"),
        ({"recognize": {"charset": 3}}, "recognize.charset: must be a path or null, got 3"),
        ({"logging": {"level": "INFO"}}, "logging.level: must be one of debug, info, warning, error, got 'INFO'"),
        (
            {"http": {"listen": "127.0.0.1:70000"}},
            "http.listen: must be host:port with port 1..65535 (e.g. '127.0.0.1:9478'), got '127.0.0.1:70000'",
        ),
        ({"http": {"listen": 9478}}, "http.listen: must be host:port with port 1..65535 (e.g. '127.0.0.1:9478'), got 9478"),
        ({"detect": 5}, "detect: must be a mapping of keys, got 5"),
        (
            {"inboxes": [{"name": "a", "path": "a", "watch": "fast"}]},
            "inboxes[0].watch: must be one of auto, inotify, poll, got 'fast'",
        ),
        ({"inboxes": [{"name": "a", "path": "a", "settle_s": 0}]}, "inboxes[0].settle_s: must be > 0, got 0"),
    ],
)
def test_bad_value_names_its_key_path(data, expected):
    assert problems_of(data) == [expected]


@pytest.mark.parametrize(
    ("section", "key"),
    [("intake", "max_pages"), ("workers", "max_jobs_per_worker"), ("workers", "count"), ("detect", "limit_side_px")],
)
def test_bool_is_not_an_int(section, key):
    (problem,) = problems_of({section: {key: True}})
    assert problem.startswith(f"{section}.{key}: must be")
    assert problem.endswith("got true")


def test_bool_is_not_a_float():
    assert problems_of({"detect": {"box_thresh": False}}) == [
        "detect.box_thresh: must be a number between 0 and 1, got false"
    ]


def test_empty_section_means_defaults():
    cfg = config_from_mapping({"detect": None, "workers": {}}, Path("/base"))
    assert cfg.detect == dataclasses.replace(DetectConfig(), precision="int8")  # null filled in by the profile
    assert cfg.workers == WorkersConfig()


# --------------------------------------------------------------------------- unknown keys


def test_unknown_key_suggests_the_close_one():
    assert problems_of({"detect": {"limt_side_px": 900}}) == [
        "detect.limt_side_px: unknown key (did you mean limit_side_px?)"
    ]


def test_unknown_top_level_key_suggests():
    assert problems_of({"outbx": "x"}) == ["outbx: unknown key (did you mean outbox?)"]


def test_unknown_key_without_close_match_lists_allowed():
    (problem,) = problems_of({"http": {"zzz": 1}})
    assert problem == ("http.zzz: unknown key (allowed: enabled, listen, max_upload_mb, max_queued, allowed_hosts, "
                       "token_rate_per_s, token_burst, min_free_mb)")


def test_unknown_key_in_inbox():
    (problem,) = problems_of({"inboxes": [{"name": "a", "path": "a", "recursiv": False}]})
    assert problem == "inboxes[0].recursiv: unknown key (did you mean recursive?)"


# --------------------------------------------------------------------------- collection


def test_all_problems_are_collected():
    problems = problems_of(
        {
            "detect": {"box_thresh": 1.7, "limt_side_px": 900},
            "inboxes": [{"name": "a", "path": "a", "watch": "fast"}],
            "workers": {"count": True},
            "colour": "blue",
        }
    )
    assert sorted(problems) == sorted(
        [
            "detect.box_thresh: must be between 0 and 1, got 1.7",
            "detect.limt_side_px: unknown key (did you mean limit_side_px?)",
            "inboxes[0].watch: must be one of auto, inotify, poll, got 'fast'",
            "workers.count: must be auto or an integer >= 1, got true",
            "colour: unknown key (allowed: " + ", ".join(f.name for f in dataclasses.fields(Config)) + ")",
        ]
    )


def test_config_error_exit_code_and_message():
    with pytest.raises(ConfigError) as info:
        config_from_mapping({"max_attempts": 0, "duplicates": "x"}, Path("/base"))
    assert info.value.exit_code == ExitCode.BAD_CONFIG
    assert "max_attempts: must be >= 1, got 0" in str(info.value)
    assert len(info.value.problems) == 2


def test_top_level_not_a_mapping():
    assert problems_of(["a"]) == ["(top level): must be a mapping of keys, got ['a']"]  # type: ignore[arg-type]


# --------------------------------------------------------------------------- inboxes


def test_inboxes_duplicate_names():
    problems = problems_of(
        {"inboxes": [{"name": "scans", "path": "a"}, {"name": "fax", "path": "b"}, {"name": "scans", "path": "c"}]}
    )
    assert problems == ["inboxes[2].name: must be unique, got 'scans' (also inboxes[0].name)"]


@pytest.mark.parametrize("value", [[], None, {"name": "a", "path": "a"}])
def test_inboxes_must_be_a_non_empty_list(value):
    (problem,) = problems_of({"inboxes": value})
    assert problem.startswith("inboxes: must be a list of at least one inbox, got ")


@pytest.mark.parametrize("name", ["a b", "scans/2", "", "ü", False])
def test_inbox_bad_name(name):
    (problem,) = problems_of({"inboxes": [{"name": name, "path": "a"}]})
    assert problem.startswith("inboxes[0].name: must be a name of letters, digits, _ and -, got ")


def test_inbox_required_keys():
    assert sorted(problems_of({"inboxes": [{"recursive": True}]})) == [
        "inboxes[0].name: required key is missing",
        "inboxes[0].path: required key is missing",
    ]


def test_inbox_must_not_contain_outputs():
    problems = problems_of({"inboxes": [{"name": "a", "path": "data"}], "outbox": "data/out"})
    assert problems == [
        "inboxes[0].path: must not contain outbox (/base/data/out), or ocrd would process its own files"
    ]


def test_non_recursive_inbox_may_contain_outputs_below_it():
    cfg = config_from_mapping(
        {"inboxes": [{"name": "a", "path": "data", "recursive": False}], "outbox": "data/out"}, Path("/base")
    )
    assert cfg.outbox == Path("/base/data/out")


def test_inboxes_must_not_overlap():
    problems = problems_of({"inboxes": [{"name": "a", "path": "in"}, {"name": "b", "path": "in/sub"}]})
    assert problems == [
        "inboxes[1].path: overlaps inboxes[0].path (/base/in), so a file could be claimed by two inboxes"
    ]


# --------------------------------------------------------------------------- files


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_relative_paths_resolve_against_the_config_dir(tmp_path, monkeypatch):
    cfg_file = write(
        tmp_path / "etc/ocrd.yaml",
        "inboxes:\n  - {name: a, path: in}\noutbox: ../out\ndetect: {model: models/det.onnx}\n"
        "archive: /abs/archive\n",
    )
    monkeypatch.chdir(write(tmp_path / "elsewhere/x", "").parent)
    cfg = load_config(cfg_file)
    etc = tmp_path / "etc"
    assert cfg.inboxes[0].path == etc / "in"
    assert cfg.outbox == etc / "../out"
    assert cfg.detect.model == etc / "models/det.onnx"
    assert cfg.archive == Path("/abs/archive")
    assert cfg.quarantine == etc / "var/quarantine"  # defaults too: next to the file


def test_relative_config_path_is_made_absolute(tmp_path, monkeypatch):
    write(tmp_path / "c.yaml", "outbox: out\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(Path("c.yaml")).outbox == tmp_path / "out"


def test_empty_file_means_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config(write(tmp_path / "c.yaml", "# nothing\n")) == default_config()


def test_load_none_means_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config(None) == default_config()


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.problems == [f"{tmp_path / 'nope.yaml'}: config file not found"]


def test_yaml_syntax_error_has_line_and_column(tmp_path):
    path = write(tmp_path / "c.yaml", "outbox: ./out\ndetect:\n  box_thresh: 0.5\n   thresh: 0.3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:4:")
    assert "invalid YAML" in problem


def test_yaml_duplicate_key_is_refused(tmp_path):
    path = write(tmp_path / "c.yaml", "outbox: a\narchive: b\noutbox: c\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [f"{path}:3:1: invalid YAML: duplicate key 'outbox'"]


def test_yaml_python_tags_are_refused(tmp_path):
    path = write(tmp_path / "c.yaml", "outbox: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].startswith(f"{path}:1:")


def test_validation_problems_from_a_file(tmp_path):
    path = write(tmp_path / "c.yaml", "detect:\n  box_thresh: 1.7\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == ["detect.box_thresh: must be between 0 and 1, got 1.7"]


# --------------------------------------------------------------------------- resolution order


def test_resolve_cli_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "config.yaml", "")
    assert resolve_config_path("a.yaml", {"OCRD_CONFIG": "b.yaml"}) == Path("a.yaml")


def test_resolve_env_next(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "config.yaml", "")
    assert resolve_config_path(None, {"OCRD_CONFIG": "b.yaml"}) == Path("b.yaml")


def test_resolve_cwd_file_next(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "config.yaml", "")
    assert resolve_config_path(None, {"OCRD_CONFIG": ""}) == tmp_path / "config.yaml"


def test_resolve_none_without_any(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config_path(None, {}) is None


def test_resolve_ignores_a_config_yaml_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").mkdir()
    assert resolve_config_path(None, {}) is None


# --------------------------------------------------------------------------- workers policy


@pytest.mark.parametrize(
    ("cpus", "expected"),
    [(1, (1, 1)), (2, (2, 1)), (3, (3, 1)), (4, (4, 1)), (8, (8, 1)), (16, (8, 2)), (24, (8, 3)), (0, (1, 1))],
)
def test_auto_pool_shape(cpus, expected):
    workers = WorkersConfig()
    assert (workers.resolved_count(cpus), workers.resolved_threads(cpus)) == expected
    assert expected[0] * expected[1] <= max(cpus, 1)


def test_explicit_pool_shape():
    assert pool_shape(8, 3, "auto") == (3, 2)
    assert pool_shape(8, 16, "auto") == (16, 1)
    assert pool_shape(8, "auto", 4) == (8, 4)  # explicit threads are not capped by the auto count
    assert WorkersConfig(count=2, intra_op_threads=5).resolved_threads(4) == 5


# --------------------------------------------------------------------------- profile


@pytest.mark.parametrize(
    "data, expected",
    [
        ({}, "ppocrv6-small"),
        ({"profile": "fast"}, "ppocrv6-tiny"),
        ({"profile": "fast", "model_set": None}, "ppocrv6-tiny"),
        ({"profile": "fast", "model_set": "ppocrv6-small"}, "ppocrv6-small"),  # an explicit set wins
        ({"profile": "standard", "model_set": "ppocrv5-mobile"}, "ppocrv5-mobile"),
    ],
)
def test_the_profile_picks_the_model_set_unless_one_is_named(tmp_path, data, expected):
    assert config_from_mapping(data, tmp_path).model_set == expected


@pytest.mark.parametrize(
    "data, det, rec",
    [
        ({}, "int8", "int8"),
        ({"profile": "fast"}, "fp32", "fp32"),
        ({"profile": "fast", "detect": {"precision": "int8"}}, "int8", "fp32"),
        ({"recognize": {"precision": "fp32"}}, "int8", "fp32"),
        ({"detect": {"precision": None}, "recognize": {"precision": None}}, "int8", "int8"),
    ],
)
def test_the_profile_picks_each_precision_left_null(tmp_path, data, det, rec):
    cfg = config_from_mapping(data, tmp_path)
    assert (cfg.detect.precision, cfg.recognize.precision) == (det, rec)


def test_an_unknown_profile_is_refused(tmp_path):
    with pytest.raises(ConfigError) as err:
        config_from_mapping({"profile": "turbo"}, tmp_path)
    assert "profile: must be one of" in str(err.value) and "fast" in str(err.value)

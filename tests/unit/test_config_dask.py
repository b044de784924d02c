"""The `executor` key and the `dask` section: defaults, addresses, and the TLS rules checked across keys."""

from __future__ import annotations

import pytest

from ocrd.config.load import config_from_mapping
from ocrd.errors import ConfigError


def _problems(tmp_path, mapping) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(mapping, tmp_path)
    return caught.value.problems


def test_the_local_pool_is_the_default_and_needs_no_scheduler(tmp_path):
    cfg = config_from_mapping({}, tmp_path)
    assert cfg.executor == "local"
    assert cfg.dask.scheduler is None and cfg.dask.max_in_flight == "auto"


def test_a_tcp_scheduler_is_enough_for_dask(tmp_path):
    cfg = config_from_mapping({"executor": "dask", "dask": {"scheduler": "tcp://127.0.0.1:8786", "max_in_flight": 6}},
                              tmp_path)  # fmt: skip
    assert (cfg.executor, cfg.dask.scheduler, cfg.dask.max_in_flight) == ("dask", "tcp://127.0.0.1:8786", 6)


def test_tls_needs_all_three_files_resolved_beside_the_config(tmp_path):
    cfg = config_from_mapping(
        {"executor": "dask", "dask": {"scheduler": "tls://sched.example:8786", "tls_ca_file": "ca.pem",
                                      "tls_cert_file": "ocrd.pem", "tls_key_file": "ocrd.key"}},
        tmp_path,
    )  # fmt: skip
    assert cfg.dask.tls_ca_file == tmp_path / "ca.pem"
    problems = _problems(tmp_path, {"dask": {"scheduler": "tls://sched.example:8786", "tls_ca_file": "ca.pem"}})
    assert problems == ["dask.tls_cert_file: required with a tls:// scheduler",
                        "dask.tls_key_file: required with a tls:// scheduler"]  # fmt: skip


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({"executor": "dask"}, "dask.scheduler: required with executor: dask"),
        ({"executor": "ray"}, "executor: must be one of local, dask, got 'ray'"),
        ({"dask": {"scheduler": "http://h:8786"}}, "dask.scheduler: must be tcp://host:port or tls://host:port"),
        ({"dask": {"scheduler": "tcp://h"}}, "dask.scheduler: must be tcp://host:port or tls://host:port"),
        ({"dask": {"scheduler": "tcp://h:8786", "tls_ca_file": "ca.pem"}}, "dask.scheduler: TLS files are set"),
        ({"dask": {"max_in_flight": 0}}, "dask.max_in_flight: must be auto or an integer >= 1, got 0"),
    ],
)
def test_bad_executor_settings_are_named(tmp_path, mapping, expected):
    problems = _problems(tmp_path, mapping)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_ocrd_check_names_unreadable_tls_files(tmp_path):
    from ocrd.service.check import run_checks

    (tmp_path / "ca.pem").write_text("x")
    cfg = config_from_mapping(
        {"executor": "dask", "dask": {"scheduler": "tls://s:8786", "tls_ca_file": "ca.pem",
                                      "tls_cert_file": "ocrd.pem", "tls_key_file": "ocrd.key"}},
        tmp_path,
    )  # fmt: skip
    dask_problems = [p.message for p in run_checks(cfg, None) if "dask" in p.message]
    assert dask_problems == [f"dask.tls_cert_file {tmp_path / 'ocrd.pem'} is missing or not readable by this user",
                             f"dask.tls_key_file {tmp_path / 'ocrd.key'} is missing or not readable by this user"]  # fmt: skip

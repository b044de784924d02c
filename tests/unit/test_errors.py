"""Unit tests for the error tree: exit codes, and errors that cross process boundaries survive pickling."""

from __future__ import annotations

import pickle

import pytest

from ocrd.errors import ConfigError, ExitCode, InputError, ModelError, OcrdError, Reason, UnavailableError


def roundtrip(exc: BaseException) -> BaseException:
    return pickle.loads(pickle.dumps(exc))


def test_input_error_pickle_keeps_reason_and_message():
    original = InputError(Reason.TRUNCATED, "the file ends early; it may still be copying")
    copy = roundtrip(original)
    assert type(copy) is InputError
    assert copy.reason is Reason.TRUNCATED
    assert copy.message == "the file ends early; it may still be copying"
    assert str(copy) == str(original) == "truncated: the file ends early; it may still be copying"
    assert copy.exit_code == ExitCode.SOME_FAILED


def test_input_error_accepts_reason_text():
    assert InputError("corrupt", "bad bytes").reason is Reason.CORRUPT
    with pytest.raises(ValueError):
        InputError("no_such_reason", "x")


@pytest.mark.parametrize("problems", ["detect.box_thresh: must be between 0 and 1, got 1.7", ["a: bad", "b.c: worse"]])
def test_config_error_pickle_keeps_problems(problems):
    original = ConfigError(problems)
    copy = roundtrip(original)
    assert type(copy) is ConfigError
    assert copy.problems == original.problems
    assert str(copy) == str(original)
    assert copy.exit_code == ExitCode.BAD_CONFIG == 78


def test_config_error_joins_problems_in_message():
    assert str(ConfigError(["a: bad", "b: worse"])) == "a: bad; b: worse"


def test_model_error_is_unavailable_and_pickles():
    copy = roundtrip(ModelError("det model file not found: /x.onnx"))
    assert isinstance(copy, UnavailableError) and isinstance(copy, OcrdError)
    assert copy.exit_code == ExitCode.UNAVAILABLE == 69
    assert str(copy) == "det model file not found: /x.onnx"


def test_exit_codes_are_the_documented_contract():
    assert [int(c) for c in (ExitCode.OK, ExitCode.SOME_FAILED, ExitCode.UNAVAILABLE, ExitCode.INTERNAL, ExitCode.BAD_CONFIG)] == [
        0,
        1,
        69,
        70,
        78,
    ]


def test_reason_codes_are_stable_snake_case():
    documented = {
        "empty_file", "too_large_bytes", "unsupported_format", "too_many_pixels", "too_many_pages", "truncated",
        "corrupt", "encrypted_pdf", "not_regular_file", "timeout", "worker_crashed", "interrupted",
    }  # fmt: skip
    values = {r.value for r in Reason}
    assert documented <= values
    assert all(v == str(r) for r, v in ((r, r.value) for r in Reason))

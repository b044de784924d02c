"""The fuzz harness without atheris: the intake checks over the seed corpus and 500 seeded mutations.

Every input must be accepted or refused with InputError; anything else is a crash (fuzz/fuzz_intake.py).
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_intake.py"
_spec = importlib.util.spec_from_file_location("fuzz_intake", _PATH)
fuzz_intake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz_intake)

SEEDS = fuzz_intake.seed_inputs()
MUTATIONS = 500


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_is_accepted_or_refused_cleanly(name):
    fuzz_intake.check_one(SEEDS[name])


def test_seeded_mutations_are_accepted_or_refused_cleanly():
    rng = random.Random(20240607)
    seeds = [SEEDS[name] for name in sorted(SEEDS)]
    for i in range(MUTATIONS):
        data = fuzz_intake.mutate(rng.choice(seeds), rng, seeds)
        try:
            fuzz_intake.check_one(data)
        except Exception as exc:  # noqa: BLE001 - report which input crashed
            raise AssertionError(f"mutation {i} crashed with {exc!r}; input {data[:64]!r}... ({len(data)} bytes)") from exc


def test_harness_flags_a_crash():
    """The harness itself can fail: a checker that raises something else than InputError is a crash."""
    original = fuzz_intake.parse_exif_orientation
    fuzz_intake.parse_exif_orientation = lambda blob: (_ for _ in ()).throw(KeyError("boom"))
    try:
        with pytest.raises(KeyError):
            fuzz_intake.check_one(b"anything")
    finally:
        fuzz_intake.parse_exif_orientation = original

"""System-test fixtures: a real `ocrd run` process on a temp config, started, polled and signalled.

Everything waits with a deadline (`DaemonHarness.wait_until`); nothing sleeps a fixed time to "let it
settle". The daemon runs in its own session, so its spawned workers share its process group and a
test (or the teardown) can kill them all at once.
"""

from __future__ import annotations

import pytest

from tests.system.harness import DaemonHarness


@pytest.fixture(scope="session", autouse=True)
def _models_ready(prepared_models):
    """Build the INT8 recognizer once, before the first daemon starts (each would otherwise wait on it)."""


@pytest.fixture
def ocrd_daemon(tmp_path):
    """A DaemonHarness on tmp_path (not started: call `.start()`, after `.write_config(...)` for overrides)."""
    harness = DaemonHarness(tmp_path)
    harness.write_config()
    try:
        yield harness
    finally:
        harness.cleanup()

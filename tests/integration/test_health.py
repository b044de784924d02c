"""/healthz and /metrics scraped over real HTTP from the daemon's HTTP server (HttpFrontend) on 127.0.0.1, port 0."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ocrd.config.load import config_from_mapping
from ocrd.errors import UnavailableError
from ocrd.http.server import HttpFrontend
from ocrd.service.handoff import Handoff
from ocrd.service.health import DurationHistogram, HealthSnapshot


class State:
    """What a daemon would hand the server: a callable returning a fresh snapshot."""

    def __init__(self):
        self.histogram = DurationHistogram(bounds_s=(1, 10))
        self.tick_age_s = 0.2
        self.workers_alive = True
        self.stopping = False
        self.handoff = Handoff()

    def health_snapshot(self) -> HealthSnapshot:
        return self.snapshot()

    def snapshot(self) -> HealthSnapshot:
        return HealthSnapshot(
            loop_last_tick_age_s=self.tick_age_s, workers_alive=self.workers_alive, workers=2, in_flight=3,
            queue_depth=7, jobs_by_state={"done": 40, "queued": 7, "quarantined": 2},
            quarantines_by_reason={"corrupt": 1, "too_large_bytes": 1}, worker_restarts=4,
            durations=self.histogram.snapshot(), stopping=self.stopping,
        )  # fmt: skip


@pytest.fixture
def state():
    return State()


class Broken(State):
    def snapshot(self) -> HealthSnapshot:
        raise RuntimeError("joblog gone")


@pytest.fixture
def cfg(tmp_path):
    return config_from_mapping({"inboxes": [{"name": "scans", "path": "in"}], "state_dir": "state"}, tmp_path)


def serve(cfg, daemon, listen="127.0.0.1:0") -> HttpFrontend:
    return HttpFrontend(cfg, listen=listen, max_tick_age_s=30).start(daemon)


@pytest.fixture
def server(state, cfg):
    srv = serve(cfg, state)
    yield srv
    srv.stop()


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_server_binds_loopback_on_a_free_port(server):
    host, port = server.address
    assert host == "127.0.0.1" and port > 0
    assert server.url == f"http://127.0.0.1:{port}"


def test_healthz_is_200_ok_when_the_loop_ticks_and_workers_are_up(server):
    code, ctype, body = get(server.url + "/healthz")
    assert code == 200 and ctype == "application/json"
    doc = json.loads(body)
    assert doc["status"] == "ok" and doc["workers"] == 2 and doc["queue_depth"] == 7 and "reasons" not in doc


def test_healthz_is_503_when_the_last_tick_is_old(server, state):
    state.tick_age_s = 45.0
    code, _, body = get(server.url + "/healthz")
    doc = json.loads(body)
    assert code == 503 and doc["status"] == "unavailable"
    assert doc["reasons"] == ["main loop stalled: last tick 45.0 s ago (limit 30 s)"]
    state.tick_age_s = 0.1
    assert get(server.url + "/healthz")[0] == 200  # recovers with the loop


def test_healthz_is_503_when_workers_are_down_or_stopping(server, state):
    state.workers_alive = False
    state.stopping = True
    code, _, body = get(server.url + "/healthz")
    assert code == 503 and json.loads(body)["reasons"] == ["stopping", "worker pool is down"]


def test_healthz_is_503_when_the_snapshot_itself_fails(cfg):
    srv = serve(cfg, Broken())
    try:
        code, _, body = get(srv.url + "/healthz")
        assert code == 503 and json.loads(body)["reasons"] == ["snapshot failed: RuntimeError: joblog gone"]
        assert get(srv.url + "/metrics")[0] == 500  # reported, and the server keeps serving
        assert get(srv.url + "/nothing")[0] == 404
    finally:
        srv.stop()


def test_metrics_are_prometheus_text_with_every_figure(server, state):
    for seconds in (0.5, 2, 3, 60):
        state.histogram.observe(seconds)
    code, ctype, body = get(server.url + "/metrics")
    assert code == 200 and ctype.startswith("text/plain; version=")  # Prometheus text exposition
    families = {f.name: f for f in text_string_to_metric_families(body)}  # parses: the format is valid
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("ocrd_jobs", (("state", "done"),))] == 40
    assert samples[("ocrd_jobs", (("state", "quarantined"),))] == 2
    assert samples[("ocrd_queue_depth", ())] == 7
    assert samples[("ocrd_jobs_in_flight", ())] == 3
    assert samples[("ocrd_workers", ())] == 2 and samples[("ocrd_workers_alive", ())] == 1
    assert samples[("ocrd_worker_restarts_total", ())] == 4
    assert samples[("ocrd_quarantines_total", (("reason", "corrupt"),))] == 1
    assert samples[("ocrd_loop_last_tick_age_seconds", ())] == pytest.approx(0.2)
    assert families["ocrd_job_duration_seconds"].type == "histogram"
    assert samples[("ocrd_job_duration_seconds_bucket", (("le", "1.0"),))] == 1
    assert samples[("ocrd_job_duration_seconds_bucket", (("le", "10.0"),))] == 3
    assert samples[("ocrd_job_duration_seconds_bucket", (("le", "+Inf"),))] == 4
    assert samples[("ocrd_job_duration_seconds_count", ())] == 4
    assert samples[("ocrd_job_duration_seconds_sum", ())] == pytest.approx(65.5)


def test_metrics_follow_the_snapshot_between_scrapes(server, state):
    state.workers_alive = False
    body = get(server.url + "/metrics")[2]
    assert "ocrd_workers_alive 0.0" in body


def test_histogram_buckets_are_cumulative_and_end_in_inf():
    h = DurationHistogram(bounds_s=(10, 1))  # unsorted on purpose
    for seconds in (0.1, 1.0, 1.5, 11, float("nan")):
        h.observe(seconds)
    snap = h.snapshot()
    assert snap.bounds_s == (1.0, 10.0, math.inf)
    assert snap.cumulative == (2, 3, 5) and snap.count == 5


def test_port_in_use_is_unavailable(server, cfg):
    host, port = server.address
    with pytest.raises(UnavailableError, match=f"cannot listen on 127.0.0.1:{port}"):
        HttpFrontend(cfg, listen=f"127.0.0.1:{port}").bind()


def test_stop_closes_the_port(state, cfg):
    srv = serve(cfg, state)
    url = srv.url
    srv.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/healthz", timeout=2)

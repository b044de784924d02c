"""Health and metrics: what `/healthz` and Prometheus `/metrics` say, from a snapshot of daemon state;
never touches the job log or the pool. The HTTP server (`ocrd.http.server`) serves them.

The only importer of prometheus_client. No import-time side effects: the
collector registry is per exporter, not the library's global one.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from ocrd import __version__

if TYPE_CHECKING:
    from ocrd.service.executor import ExecutorHealth

# Upper bounds of the job duration buckets, seconds (+Inf is implied): a page takes about
# a second; multi-page PDFs run to minutes; job_timeout_s defaults to 300.
DEFAULT_DURATION_BUCKETS_S: tuple[float, ...] = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)

DEFAULT_MAX_TICK_AGE_S = 30.0  # the loop ticks every 0.2 s; WatchdogSec=60 kills it at twice this


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """Cumulative counts per upper bound (the last bound is +Inf), plus sum and count."""

    bounds_s: tuple[float, ...]
    cumulative: tuple[int, ...]
    sum_s: float
    count: int


class DurationHistogram:
    """Job durations for /metrics. `observe()` is called by the daemon loop; `snapshot()` by the HTTP thread."""

    def __init__(self, bounds_s: Sequence[float] = DEFAULT_DURATION_BUCKETS_S):
        bounds = sorted(float(b) for b in bounds_s)
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self._bounds = tuple(bounds)
        self._counts = [0] * len(self._bounds)
        self._sum_s = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        # NaN compares false everywhere: it lands in +Inf rather than raising on the daemon loop.
        index = next((i for i, bound in enumerate(self._bounds) if seconds <= bound), len(self._bounds) - 1)
        with self._lock:
            self._counts[index] += 1
            self._sum_s += seconds

    def snapshot(self) -> HistogramSnapshot:
        with self._lock:
            counts = list(self._counts)
            total_s = self._sum_s
        cumulative, running = [], 0
        for n in counts:
            running += n
            cumulative.append(running)
        return HistogramSnapshot(self._bounds, tuple(cumulative), total_s, running)


def _empty_histogram() -> HistogramSnapshot:
    return DurationHistogram().snapshot()


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """Everything /healthz and /metrics show, built by the daemon when asked (cheap: no I/O).

    Called on an HTTP thread: fill it from plain attributes the loop updates
    (ints, a dict the loop replaces rather than mutates), never from SQLite.
    """

    loop_last_tick_age_s: float  # now - time of the loop's last completed step(), monotonic clock
    workers_alive: bool  # the pool is running and not broken
    workers: int  # configured worker processes
    in_flight: int = 0  # jobs submitted to the pool, not yet collected
    queue_depth: int = 0  # rows in state queued (from the loop's last count)
    jobs_by_state: Mapping[str, int] = field(default_factory=dict)  # job-log rows per state
    quarantines_by_reason: Mapping[str, int] = field(default_factory=dict)  # since this process started
    worker_restarts: int = 0  # workers replaced after a crash, timeout or recycling, since start
    durations: HistogramSnapshot = field(default_factory=_empty_histogram)  # DurationHistogram.snapshot()
    stopping: bool = False  # SIGTERM received: not healthy for new work
    executor: ExecutorHealth | None = None  # what runs the jobs: the local pool or a Dask cluster


def health_verdict(snap: HealthSnapshot, max_tick_age_s: float = DEFAULT_MAX_TICK_AGE_S) -> list[str]:
    """Reasons the daemon is unhealthy; empty when healthy."""
    reasons = []
    if snap.stopping:
        reasons.append("stopping")
    if snap.loop_last_tick_age_s > max_tick_age_s:
        reasons.append(f"main loop stalled: last tick {snap.loop_last_tick_age_s:.1f} s ago (limit {max_tick_age_s:g} s)")
    ex = snap.executor
    if ex is not None and ex.kind != "local":
        if not ex.scheduler_reachable:
            reasons.append(f"{ex.kind} scheduler {ex.scheduler} unreachable; jobs wait queued")
        elif not ex.workers_connected:
            reasons.append(f"no usable {ex.kind} worker connected ({ex.workers_refused} refused)")
    elif not snap.workers_alive:
        reasons.append("worker pool is down")
    return reasons


class SnapshotCollector:
    """A prometheus_client collector that turns one snapshot into metric families at scrape time."""

    def __init__(self, snapshot: Callable[[], HealthSnapshot]):
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        snap = self._snapshot()
        info = GaugeMetricFamily("ocrd_build_info", "ocrd version running", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        jobs = GaugeMetricFamily("ocrd_jobs", "Jobs in the job log by state", labels=["state"])
        for state, n in sorted(snap.jobs_by_state.items()):
            jobs.add_metric([state], n)
        yield jobs
        yield GaugeMetricFamily("ocrd_queue_depth", "Jobs queued, waiting for a worker", value=snap.queue_depth)
        yield GaugeMetricFamily("ocrd_jobs_in_flight", "Jobs submitted to the worker pool", value=snap.in_flight)
        yield GaugeMetricFamily("ocrd_workers", "Configured worker processes", value=snap.workers)
        yield GaugeMetricFamily("ocrd_workers_alive", "1 when the worker pool is up", value=int(snap.workers_alive))
        yield CounterMetricFamily(
            "ocrd_worker_restarts", "Worker processes replaced since start", value=snap.worker_restarts
        )
        quarantines = CounterMetricFamily(
            "ocrd_quarantines", "Files quarantined since start, by reason", labels=["reason"]
        )
        for reason, n in sorted(snap.quarantines_by_reason.items()):
            quarantines.add_metric([reason], n)
        yield quarantines
        yield GaugeMetricFamily(
            "ocrd_loop_last_tick_age_seconds", "Seconds since the main loop last completed a step",
            value=snap.loop_last_tick_age_s,
        )  # fmt: skip
        yield from _executor_metrics(snap.executor)
        h = snap.durations
        yield HistogramMetricFamily(
            "ocrd_job_duration_seconds", "Time from submission to a worker until the result was collected",
            buckets=[("+Inf" if math.isinf(b) else repr(float(b)), c) for b, c in zip(h.bounds_s, h.cumulative, strict=True)],
            sum_value=h.sum_s,
        )  # fmt: skip


def healthz_document(snapshot: Callable[[], HealthSnapshot], max_tick_age_s: float = DEFAULT_MAX_TICK_AGE_S) -> tuple[int, dict[str, Any]]:
    """The /healthz answer: (200 or 503, JSON body). A failing snapshot is an unhealthy daemon, not an error."""
    try:
        snap = snapshot()
    except Exception as exc:  # noqa: BLE001 - a broken snapshot is an unhealthy daemon, not a dead server
        return 503, {"status": "unavailable", "reasons": [f"snapshot failed: {type(exc).__name__}: {exc}"]}
    reasons = health_verdict(snap, max_tick_age_s)
    body: dict[str, Any] = {
        "status": "unavailable" if reasons else "ok",
        "loop_last_tick_age_s": round(snap.loop_last_tick_age_s, 3),
        "workers": snap.workers,
        "workers_alive": snap.workers_alive,
        "in_flight": snap.in_flight,
        "queue_depth": snap.queue_depth,
    }
    if snap.executor is not None:
        body["executor"] = snap.executor.as_dict()
    if reasons:
        body["reasons"] = reasons
    return (503 if reasons else 200), body


def _executor_metrics(ex: ExecutorHealth | None) -> Iterable[Metric]:
    if ex is None:
        return
    info = GaugeMetricFamily("ocrd_executor_info", "What runs the jobs", labels=["kind", "scheduler"])
    info.add_metric([ex.kind, ex.scheduler or ""], 1)
    yield info
    if ex.scheduler_reachable is not None:
        yield GaugeMetricFamily("ocrd_executor_scheduler_reachable", "1 while the Dask scheduler answers",
                                value=int(ex.scheduler_reachable))  # fmt: skip
    yield GaugeMetricFamily("ocrd_executor_workers", "Workers that may take jobs", value=ex.workers_connected)
    yield GaugeMetricFamily("ocrd_executor_workers_refused", "Workers turned away (other version or models)",
                            value=ex.workers_refused)  # fmt: skip
    yield GaugeMetricFamily("ocrd_executor_threads", "Task threads of those workers", value=ex.threads)
    yield GaugeMetricFamily("ocrd_executor_tasks_in_flight", "Jobs handed to the executor, not yet back",
                            value=ex.tasks_in_flight)  # fmt: skip
    yield GaugeMetricFamily("ocrd_executor_capacity", "Jobs the daemon may have in flight now", value=ex.capacity)


class MetricsExporter:
    """The /metrics payload from a snapshot callable; the collector registry is this object's, not the global one."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, snapshot: Callable[[], HealthSnapshot]):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SnapshotCollector(snapshot))

    def render(self) -> bytes:
        """Prometheus text exposition; raises what the snapshot raises (the server answers 500)."""
        return generate_latest(self.registry)

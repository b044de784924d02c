"""What every request handler shares: the config, the hand-off to the main loop, health, tokens, the rate limiter, job-log readers.

Built once per server start. Job-log reads go through a read-only
connection per request thread (`Readers.get`), never the daemon's writer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request

from ocrd.config.schema import Config, InboxConfig
from ocrd.http.access import RateLimiter
from ocrd.http.tokens import TokenStore
from ocrd.jobs.log import DB_FILE_NAME, JobLog
from ocrd.service.handoff import Handoff
from ocrd.service.health import HealthSnapshot, MetricsExporter


class Readers:
    """One read-only JobLog per thread (sqlite3 connections belong to the thread that opened them)."""

    def __init__(self, db_path: Path):
        self.db_path = db_path
        self._local = threading.local()

    def get(self) -> JobLog:
        joblog = getattr(self._local, "joblog", None)
        if joblog is None:
            joblog = JobLog.open_readonly(self.db_path)
            self._local.joblog = joblog
        return joblog


@dataclass
class AppContext:
    cfg: Config
    handoff: Handoff
    snapshot: Callable[[], HealthSnapshot]
    metrics: MetricsExporter
    tokens: TokenStore
    limiter: RateLimiter
    readers: Readers
    is_stopping: Callable[[], bool]
    max_tick_age_s: float

    @classmethod
    def build(cls, cfg: Config, handoff: Handoff, snapshot: Callable[[], HealthSnapshot],
              is_stopping: Callable[[], bool], max_tick_age_s: float) -> AppContext:  # fmt: skip
        return cls(
            cfg=cfg, handoff=handoff, snapshot=snapshot, metrics=MetricsExporter(snapshot),
            tokens=TokenStore.for_config(cfg), limiter=RateLimiter(cfg.http.token_rate_per_s, cfg.http.token_burst),
            readers=Readers(cfg.state_dir / DB_FILE_NAME), is_stopping=is_stopping, max_tick_age_s=max_tick_age_s,
        )  # fmt: skip

    def inbox(self, name: str) -> InboxConfig | None:
        return next((inbox for inbox in self.cfg.inboxes if inbox.name == name), None)


def context_of(request: Request) -> AppContext:
    return request.app.state.ctx

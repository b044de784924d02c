"""The daemon's link to the Dask scheduler: TLS, connecting (and again after the scheduler was lost), the
worker plugin's registration, the topics workers report on, and which workers may take jobs.

Every call that can block on the network runs on the executor's monitor thread, never on the daemon loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from distributed import Client
from distributed.security import Security

from ocrd.cluster.plugin import RESOURCE, STARTED_TOPIC, WORKER_TOPIC, OcrdWorkerPlugin
from ocrd.errors import UnavailableError
from ocrd.logs import get_logger

if TYPE_CHECKING:
    from ocrd.config.schema import DaskConfig

log = get_logger("ocrd.cluster")


@dataclass(frozen=True, slots=True)
class ClusterView:
    """The scheduler as last asked: reachable, the workers that took the plugin (and their task threads), refused ones."""

    reachable: bool = False
    accepted: tuple[str, ...] = ()
    threads: int = 0
    refused: tuple[str, ...] = ()


def security_for(d: DaskConfig) -> Security | None:
    """Mutual TLS for a tls:// scheduler (every connection encrypted, both sides show a certificate)."""
    if d.scheduler is None or not d.scheduler.startswith("tls://"):
        return None
    for path in (d.tls_ca_file, d.tls_cert_file, d.tls_key_file):
        if path is None or not path.is_file():
            raise UnavailableError(f"dask TLS file {path} is missing or not a file")
    return Security(tls_ca_file=str(d.tls_ca_file), tls_client_cert=str(d.tls_cert_file),
                    tls_client_key=str(d.tls_key_file), require_encryption=True)  # fmt: skip


class Connection:
    """One scheduler address; `client` is None or a connected `distributed.Client` (replaced after a loss)."""

    def __init__(
        self,
        d: DaskConfig,
        plugin: OcrdWorkerPlugin,
        on_started: Callable[[dict[str, Any]], None],
        on_accepted: Callable[[str], None],
    ):
        assert d.scheduler is not None  # the config requires it with executor: dask
        self.address = d.scheduler
        self._timeout_s = d.connect_timeout_s
        self._security = security_for(d)
        self._plugin = plugin
        self._on_started = on_started
        self._on_accepted = on_accepted
        self.client: Client | None = None
        self.view = ClusterView()
        self._refused: dict[str, str] = {}  # worker address -> why, from the workers' own reports
        self._lock = threading.Lock()
        self._warned_unreachable = False  # one warning per outage, not one per try
        self._registered_with: str | None = None  # the scheduler process (its id) that has our plugin

    @property
    def connected(self) -> bool:
        client = self.client
        return client is not None and client.status == "running"

    def ensure(self) -> None:
        """Connect when there is no live client; a client still reconnecting by itself is left to it."""
        client = self.client
        if client is not None and client.status in ("running", "connecting", "newly-created"):
            return
        if client is not None:
            self._close_quietly(client)
            self.client = None
        try:
            client = Client(self.address, security=self._security, timeout=self._timeout_s, set_as_default=False,
                            name="ocrd-daemon")  # fmt: skip
        except (OSError, TimeoutError) as exc:
            if not self._warned_unreachable:
                log.warning("dask_scheduler_unreachable", scheduler=self.address, error=str(exc) or type(exc).__name__,
                            note="jobs stay queued; watching and claiming go on; trying again")  # fmt: skip
                self._warned_unreachable = True
            self.view = ClusterView()
            return
        self.client = client
        self._warned_unreachable = False
        log.info("dask_scheduler_connected", scheduler=self.address)
        self.refresh()  # registers the plugin with this scheduler

    def _register(self, client: Client, scheduler_id: str) -> None:
        """Topics and the worker plugin, once per scheduler process: a client that reconnected by itself to a
        restarted scheduler keeps neither (the new scheduler knows no subscription and no plugin)."""
        client.subscribe_topic(STARTED_TOPIC, lambda event: self._on_started(event[1]))
        client.subscribe_topic(WORKER_TOPIC, lambda event: self._on_worker_event(event[1]))
        log.info("dask_plugin_registering", scheduler=self.address, scheduler_id=scheduler_id)
        # Waits until every current worker ran its setup (minutes on a first INT8 build): its own thread.
        try:
            client.register_plugin(self._plugin, name=self._plugin.name)
        except Exception as exc:  # noqa: BLE001 - a worker's failure is its own (it reports refused); go on
            log.warning("dask_plugin_registration_incomplete", scheduler=self.address, error=str(exc))

    def refresh(self) -> ClusterView:
        """Ask the scheduler which workers offer the ocrd resource; an unreachable one gives an empty view."""
        client = self.client
        if client is None or client.status != "running":
            self.view = ClusterView(reachable=False)
            return self.view
        try:
            info = client.scheduler_info(n_workers=-1)
        except Exception as exc:  # noqa: BLE001 - a failed query is an unreachable scheduler for this turn
            log.warning("dask_scheduler_query_failed", scheduler=self.address, error=str(exc))
            self.view = ClusterView(reachable=False)
            return self.view
        scheduler_id = str(info.get("id"))
        if scheduler_id != self._registered_with:
            self._registered_with = scheduler_id
            threading.Thread(target=self._register, args=(client, scheduler_id), daemon=True,
                             name="ocrd-dask-register").start()  # fmt: skip
        workers: dict[str, dict[str, Any]] = info.get("workers", {})
        accepted = [addr for addr, w in workers.items() if (w.get("resources") or {}).get(RESOURCE)]
        with self._lock:
            for addr in [a for a in self._refused if a not in workers]:
                del self._refused[addr]  # gone (restarted or stopped): a new process checks itself again
            refused = tuple(sorted(self._refused))
        threads = sum(int(workers[a].get("nthreads", 1)) for a in accepted)
        self.view = ClusterView(True, tuple(sorted(accepted)), threads, refused)
        return self.view

    def _on_worker_event(self, msg: dict[str, Any]) -> None:
        worker = str(msg.get("worker"))
        if msg.get("event") == "refused":
            with self._lock:
                self._refused[worker] = str(msg.get("reason"))
            log.error("dask_worker_refused", worker=worker, reason=msg.get("reason"), identity=msg.get("identity"),
                      hint="install the daemon's ocrd version and model files on that host, then restart its worker")  # fmt: skip
        elif msg.get("event") == "accepted":
            with self._lock:
                self._refused.pop(worker, None)
            log.info("dask_worker_accepted", worker=worker, nthreads=msg.get("nthreads"), identity=msg.get("identity"))
            self._on_accepted(worker)

    def restart_worker(self, worker: str) -> None:
        """Kill and restart one worker process through its nanny (a task Dask cannot interrupt)."""
        client = self.client
        if client is None:
            return
        try:
            client.restart_workers([worker], timeout=max(60.0, 6 * self._timeout_s), raise_for_error=True)
        except Exception as exc:  # noqa: BLE001 - a worker without a nanny cannot be restarted from here
            log.error("dask_worker_restart_failed", worker=worker, error=f"{type(exc).__name__}: {exc}",
                      hint="run workers with their nanny (the default) so a stuck task can be stopped")  # fmt: skip

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            self._close_quietly(client)

    @staticmethod
    def _close_quietly(client: Client) -> None:
        try:
            client.close(timeout=5)
        except Exception:  # noqa: BLE001, S110 - closing a client whose scheduler is gone may fail; nothing to keep
            pass

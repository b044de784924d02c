"""The inbox layer: watchdog observers that only report candidate files, plus the public face of ignore rules, stability, mounts, scans and claims; must not decide, queue, read file contents or touch the job log.

The only importer of `watchdog`. The handler runs on an observer thread: it
filters (event type, ignored names, regular file) and calls `on_event(inbox
name, path)`; it never raises. The daemon's callable should just put the pair
on a thread-safe queue; the main loop feeds it to a `StabilityTracker`.

Split into siblings to stay small: `inbox_rules` (ignore rules),
`inbox_stability` (tracker), `inbox_mounts` (inotify or poll),
`inbox_files` (scan, claim, work folder, release). Import from here.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserverVFS

from ocrd.config.schema import InboxConfig
from ocrd.errors import UnavailableError
from ocrd.logs import get_logger
from ocrd.inbox.files import (
    claim,
    claimed_rel_path,
    collision_name,
    escaped_name,
    fsync_dir,
    release,
    remove_claimed,
    scan_inbox,
    text_named_claim,
    text_rel_path,
    work_dir_entries,
    work_root,
)
from ocrd.inbox.mounts import filesystem_type, parse_mounts, watch_mode_for
from ocrd.inbox.rules import OCRD_DIR_NAME, is_ignored, is_ignored_name
from ocrd.inbox.stability import StabilityTracker

__all__ = [
    "OCRD_DIR_NAME",
    "InboxWatcher",
    "StabilityTracker",
    "claim",
    "claimed_rel_path",
    "collision_name",
    "escaped_name",
    "filesystem_type",
    "fsync_dir",
    "is_ignored",
    "is_ignored_name",
    "parse_mounts",
    "release",
    "remove_claimed",
    "scan_inbox",
    "text_named_claim",
    "text_rel_path",
    "watch_mode_for",
    "work_dir_entries",
    "work_root",
]

log = get_logger(__name__)

OnEvent = Callable[[str, Path], None]
_PATH_EVENTS = ("created", "modified", "closed")  # the event's src_path is the candidate
_MOVE_EVENT = "moved"  # the dest_path is: a rename into the tree, or `x.part` -> `x.jpg`


class _InboxEventHandler(FileSystemEventHandler):
    """Turns watchdog events of one inbox into `on_event(name, path)` calls for non-ignored regular files."""

    def __init__(self, inbox: InboxConfig, watched_root: str, on_event: OnEvent):
        super().__init__()
        self._name = inbox.name
        self._root = Path(os.path.abspath(inbox.path))  # what the daemon knows the inbox as
        self._watched_root = watched_root  # what the observer watches (symlinks resolved)
        self._on_event = on_event

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            path = self._candidate(event)
            if path is not None:
                self._on_event(self._name, path)
        except Exception:  # noqa: BLE001 - an exception here would kill the observer thread
            log.exception("inbox_event_failed", inbox=self._name, fs_event=repr(event))

    def _candidate(self, event: FileSystemEvent) -> Path | None:
        if event.is_directory:
            return None
        if event.event_type in _PATH_EVENTS:
            raw = event.src_path
        elif event.event_type == _MOVE_EVENT:
            raw = event.dest_path
        else:
            return None
        rel = os.path.relpath(os.fsdecode(raw), self._watched_root)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep) or is_ignored(rel):
            return None
        path = self._root / rel  # the same spelling scan_inbox uses, so the tracker sees one key
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return None  # symlinks, fifos: never candidates
        except OSError:
            return None  # gone already; a later event or the rescan will tell
        return path


def _listdir_not_ignored(path: str | None) -> Iterator[os.DirEntry[str]]:
    """scandir without ignored names, so the poller never walks `.ocrd/` or NAS metadata folders."""
    with os.scandir(path) as it:
        for entry in it:
            if not is_ignored_name(entry.name):
                yield entry


# watchdog (7.1) logs this at ERROR when an inotify event is read after the
# emitter was told to stop: stop() racing a pending event, or a removed inbox
# root. The event is dropped, which is right (a started daemon rescans its
# inboxes), so it is no error of the service's and must not page anyone.
_EVENT_AFTER_STOP = "queue_events() called when the thread is inactive"
_WATCHDOG_INOTIFY_LOGGER = "watchdog.observers.inotify"


class _EventAfterStopFilter(logging.Filter):
    """Turns watchdog's 'event after stop' ERROR record into ocrd's own debug event."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _EVENT_AFTER_STOP not in str(record.msg):
            return True
        log.debug("inbox_event_after_stop_dropped", source=record.name)
        return False


def _quiet_event_after_stop() -> None:
    """Attach the filter once; called when watching starts, never at import."""
    logger = logging.getLogger(_WATCHDOG_INOTIFY_LOGGER)
    if not any(isinstance(f, _EventAfterStopFilter) for f in logger.filters):
        logger.addFilter(_EventAfterStopFilter())


def _polling_observer(poll_interval_s: float) -> BaseObserver:
    # lstat, not stat: the default would descend into symlinked folders, out of the tree.
    return PollingObserverVFS(stat=os.lstat, listdir=_listdir_not_ignored, polling_interval=poll_interval_s)


class InboxWatcher:
    """One watchdog observer per inbox (inotify, or polling on network file systems), feeding `on_event`."""

    def __init__(
        self,
        inboxes: Sequence[InboxConfig],
        on_event: OnEvent,
        *,
        poll_interval_s: float = 1.0,
        mounts_text: str | None = None,
    ):
        self._inboxes = tuple(inboxes)
        self._on_event = on_event
        self._poll_interval_s = poll_interval_s
        self._mounts_text = mounts_text
        self._observers: dict[str, BaseObserver] = {}
        self.modes: dict[str, str] = {}  # inbox name -> "inotify" | "poll", as actually started

    def start(self) -> None:
        """Start every observer; raises UnavailableError (after stopping those started) when an inbox cannot be watched."""
        if self._observers:
            raise RuntimeError("InboxWatcher already started")
        _quiet_event_after_stop()
        try:
            for inbox in self._inboxes:
                self._start_one(inbox)
        except BaseException:
            self.stop()
            raise

    def _start_one(self, inbox: InboxConfig) -> None:
        if not Path(inbox.path).is_dir():
            raise UnavailableError(f"inbox {inbox.name}: {inbox.path} is not a folder")
        mode = watch_mode_for(inbox.path, inbox.watch, self._mounts_text)
        # Watch the resolved folder: inotify (IN_DONT_FOLLOW) would watch a symlinked root itself and see nothing.
        watched_root = os.path.realpath(inbox.path)
        handler = _InboxEventHandler(inbox, watched_root, self._on_event)
        if mode == "inotify":
            observer = Observer()
            try:
                observer.schedule(handler, watched_root, recursive=inbox.recursive)
                observer.start()
            except OSError as exc:
                # Typically the inotify watch or instance limit (ENOSPC/EMFILE): polling still works.
                log.warning("inbox_inotify_failed", inbox=inbox.name, path=str(inbox.path), error=str(exc), mode="poll")
                _stop_quietly(observer)
                mode = "poll"
            else:
                self._observers[inbox.name] = observer
        if mode == "poll":
            observer = _polling_observer(self._poll_interval_s)
            try:
                observer.schedule(handler, watched_root, recursive=inbox.recursive)
                observer.start()
            except OSError as exc:
                _stop_quietly(observer)
                raise UnavailableError(f"inbox {inbox.name}: cannot watch {inbox.path}: {exc}") from exc
            self._observers[inbox.name] = observer
        self.modes[inbox.name] = mode
        log.info("inbox_watch_started", inbox=inbox.name, path=str(inbox.path), mode=mode)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop all observers and wait up to `timeout_s` for each thread; safe to call twice."""
        observers, self._observers = self._observers, {}
        for observer in observers.values():
            _stop_quietly(observer)
        for name, observer in observers.items():
            if observer.is_alive():
                observer.join(timeout_s)
                if observer.is_alive():
                    log.warning("inbox_watch_stop_timed_out", inbox=name)

    def is_alive(self) -> bool:
        """True while every inbox has a running observer and emitter (a polled root that vanished stops its emitter)."""
        if not self._observers or len(self._observers) != len(self._inboxes):
            return False
        return all(
            observer.is_alive() and observer.emitters and all(e.is_alive() for e in observer.emitters)
            for observer in self._observers.values()
        )


def _stop_quietly(observer: BaseObserver) -> None:
    try:
        observer.stop()
    except Exception:  # noqa: BLE001 - stopping a half-started observer must not mask the first error
        log.debug("inbox_observer_stop_failed", exc_info=True)

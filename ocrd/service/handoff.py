"""Requests from HTTP threads that only the main loop may carry out (claim an upload, requeue a job): a thread-safe queue of tickets, each answered once.

The main loop is the only writer of the job log; a request thread never
writes a row. It puts a ticket here, wakes the loop, and waits (with a
deadline) for the answer. A ticket is either taken by the loop or abandoned
by its requester, never both: a request that gave up waiting can be sure the
loop will not make a job of it, and the loop deletes the staging file instead.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """A complete, fsynced staging file to claim as a job of `inbox` under `name`."""

    inbox: str
    name: str
    staged_path: Path
    size_bytes: int
    sha256: str
    submitted_by: str | None


@dataclass(frozen=True, slots=True)
class RequeueRequest:
    job_id: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the loop did not carry a request out: a stable code and words for people."""

    code: str
    message: str


_WAITING, _TAKEN, _ABANDONED, _ANSWERED = "waiting", "taken", "abandoned", "answered"


class Ticket:
    """One request and, once the loop has answered, its result (a value or a Refusal)."""

    def __init__(self, request: UploadRequest | RequeueRequest):
        self.request = request
        self._lock = threading.Lock()
        self._state = _WAITING
        self._result: Any = None
        self._callbacks: list[Callable[[], None]] = []
        self._answered = threading.Event()

    # -- the main loop's side

    def _leave_waiting(self, state: str) -> bool:
        """Move a waiting ticket to `state`; False when the other side moved it first."""
        with self._lock:
            if self._state != _WAITING:
                return False
            self._state = state
            return True

    def take(self) -> bool:
        """The loop starts on it; False when its requester gave up first (then clean up and skip it)."""
        return self._leave_waiting(_TAKEN)

    def answer(self, result: Any) -> None:
        """Give the result (a value, or a Refusal); runs the requester's callbacks on this thread."""
        with self._lock:
            self._result = result
            self._state = _ANSWERED
            callbacks, self._callbacks = self._callbacks, []
        self._answered.set()
        for callback in callbacks:
            callback()

    # -- the requester's side

    def abandon(self) -> bool:
        """Give up waiting; True when the loop had not taken it (it never will)."""
        return self._leave_waiting(_ABANDONED)

    def on_answer(self, callback: Callable[[], None]) -> None:
        """Call `callback()` once answered (at once when it already is); it must be quick and thread-safe."""
        with self._lock:
            if self._state != _ANSWERED:
                self._callbacks.append(callback)
                return
        callback()

    def wait(self, timeout_s: float) -> bool:
        return self._answered.wait(timeout_s)

    @property
    def result(self) -> Any:
        return self._result


class Handoff:
    """The queue between request threads and the main loop; `wake` nudges the loop out of its wait."""

    def __init__(self, wake: Callable[[], None] = lambda: None):
        self._wake = wake
        self._lock = threading.Lock()
        self._tickets: deque[Ticket] = deque()
        self._closed: Refusal | None = None

    def submit(self, request: UploadRequest | RequeueRequest) -> Ticket:
        """Queue `request`; the ticket is answered at once with the refusal when the loop has closed."""
        ticket = Ticket(request)
        with self._lock:
            closed = self._closed
            if closed is None:
                self._tickets.append(ticket)
        if closed is not None:
            ticket.take()
            ticket.answer(closed)
        else:
            self._wake()
        return ticket

    def pending(self) -> int:
        with self._lock:
            return len(self._tickets)

    def take_all(self) -> list[Ticket]:
        """Every ticket queued so far (the main loop calls this each turn)."""
        with self._lock:
            tickets, self._tickets = list(self._tickets), deque()
        return tickets

    def close(self, refusal: Refusal) -> list[Ticket]:
        """Refuse everything from now on (stopping); returns the tickets still queued, for the loop to refuse."""
        with self._lock:
            self._closed = refusal
            tickets, self._tickets = list(self._tickets), deque()
        return tickets

"""The sd_notify protocol against a real AF_UNIX datagram socket the test opens, as systemd would."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from ocrd.service.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path):
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET; yields (path, socket)."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    yield str(path), sock
    sock.close()


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode("utf-8")


def test_ready_status_watchdog_stopping_arrive_as_datagrams(listener):
    path, sock = listener
    notifier = Notifier(path)
    assert notifier.enabled
    assert notifier.ready("2 workers, 0 in flight")
    assert received(sock) == "READY=1\nSTATUS=2 workers, 0 in flight"
    assert notifier.status("1 in flight, 5 done")
    assert received(sock) == "STATUS=1 in flight, 5 done"
    assert notifier.watchdog()
    assert received(sock) == "WATCHDOG=1"
    assert notifier.stopping()
    assert received(sock) == "STOPPING=1"
    notifier.close()


def test_ready_without_status_is_a_bare_ready(listener):
    path, sock = listener
    Notifier(path).ready()
    assert received(sock) == "READY=1"


def test_notify_socket_is_read_from_the_environment(listener, monkeypatch):
    path, sock = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert Notifier().watchdog()
    assert received(sock) == "WATCHDOG=1"


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX") or os.uname().sysname != "Linux", reason="abstract sockets are Linux-only")
def test_abstract_namespace_address_with_leading_at():
    name = f"ocrd-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2.0)
    try:
        assert Notifier("@" + name).ready("up")
        assert received(sock) == "READY=1\nSTATUS=up"
    finally:
        sock.close()


def test_without_notify_socket_everything_is_a_silent_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    assert notifier.ready("x") is False
    assert notifier.watchdog() is False
    assert notifier.stopping() is False
    notifier.close()


def test_a_vanished_socket_is_not_fatal(tmp_path):
    # systemd restarted or the socket is gone: notifications are advisory.
    notifier = Notifier(str(tmp_path / "gone.sock"))
    assert notifier.enabled
    assert notifier.watchdog() is False

"""A receiver that drips its answer cannot hold an attempt past its overall deadline."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from nhi import outbound

LIMITS = outbound.Limits(connect_timeout=1, read_timeout=1, allow_private=True)


@pytest.fixture
def dripper() -> Iterator[tuple[str, list[bytes]]]:
    """A TCP server that sends ``script[0]`` at once, then drips ``script[1]`` a byte every
    0.2 s (the script is set per test)."""
    script: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    stop = threading.Event()

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            fast, slow = [*script, b"", b""][:2]
            conn.sendall(fast)
            for byte in slow:
                if stop.is_set():
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook", script
    stop.set()
    server.close()


def test_dripping_headers_are_cut_at_the_deadline(dripper):
    url, script = dripper
    script += [b"", b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n"]
    started = time.monotonic()
    result = outbound.post(url, b"{}", {"content-type": "application/json"}, LIMITS)
    elapsed = time.monotonic() - started
    assert elapsed < 3.5, elapsed
    assert result.status is None and result.error and "timed out" in result.error


def test_dripping_body_keeps_the_status_and_stops_in_time(dripper):
    url, script = dripper
    script += [b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", b"x" * 500]
    started = time.monotonic()
    result = outbound.post(url, b"{}", {"content-type": "application/json"}, LIMITS)
    assert time.monotonic() - started < 3.5
    assert result.status == 200  # the receiver did acknowledge; only its body was cut off
    assert result.error and "deadline" in result.error


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",
        "64:ff9b::a00:1",
        "2002:a00:1::1",
        "::ffff:0:7f00:1",
        "fec0::1",
        "::ffff:169.254.169.254",
    ],
)
def test_ipv6_forms_of_private_addresses_are_refused(address):
    import ipaddress

    assert outbound._allowed(ipaddress.ip_address(address)) is False

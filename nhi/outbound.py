"""Outbound HTTP to webhook receivers: URL rules, SSRF refusal, and a bounded POST.

The receiver is untrusted. The client therefore resolves the host itself, refuses private,
loopback, link-local and other non-global addresses (unless ``allow_private``), connects to the
address it checked (no second resolution an attacker could flip), never follows redirects, bounds
connect and read time and the total duration, and reads at most ``max_bytes`` of the response.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000


class TargetRefused(Exception):
    """The URL points at an address webhooks may not reach."""


def url_problems(url: str) -> list[str]:
    """Syntax problems of a webhook URL (empty list when it is acceptable)."""
    if len(url) > MAX_URL_LENGTH:
        return [f"must be at most {MAX_URL_LENGTH} characters"]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ["is not a valid URL"]
    if parts.scheme not in ("http", "https"):
        return ["must be an http or https URL"]
    if not parts.hostname:
        return ["must include a host"]
    if port == 0:
        return ["has an invalid port"]
    if any(c.isspace() for c in url):
        return ["must not contain whitespace"]
    return []


# IPv6 ranges that carry an IPv4 address inside (NAT64, 6to4, IPv4-compatible, SIIT): the
# embedded address is what such a packet may end up reaching, so it is checked too.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_COMPAT = (ipaddress.ip_network("::/96"), ipaddress.ip_network("::ffff:0:0:0/96"))
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in (*_NAT64, *_COMPAT)):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _SITE_LOCAL:
            return False
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return inner.is_global and not inner.is_multicast
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int, *, allow_private: bool) -> list[tuple[int, str]]:
    """(family, address) pairs for ``host``; TargetRefused if any of them is not public.

    Refusing when *any* address is private (not only the first) closes the trick of a name that
    resolves to both a public and an internal address. Raises ``socket.gaierror`` when the name
    does not resolve.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    out: list[tuple[int, str]] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not allow_private and not _allowed(ip):
            raise TargetRefused(
                f"{host} resolves to {ip}, a private, loopback or link-local address"
            )
        out.append((family, address))
    if not out:
        raise socket.gaierror(f"{host} has no address")
    return out


def check_target(url: str, *, allow_private: bool) -> str | None:
    """At registration: why ``url`` may not be used, or None. A name that does not resolve (yet)
    is accepted; it is checked again at every connection."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        resolve(host, port, allow_private=allow_private)
    except TargetRefused as exc:
        return str(exc)
    except (OSError, UnicodeError):
        return None
    return None


@dataclass
class Response:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None
    duration_ms: int = 0
    refused: bool = False


@dataclass(frozen=True)
class Limits:
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    max_bytes: int = 65536
    allow_private: bool = False


def _resolve_within(host: str, port: int, limits: Limits) -> list[tuple[int, str]]:
    """``resolve`` bounded by the connect timeout (the resolver itself has no timeout)."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(resolve(host, port, allow_private=limits.allow_private))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True, name="nhi-webhook-dns")
    worker.start()
    worker.join(limits.connect_timeout)
    if not outcome:
        raise TimeoutError(f"DNS lookup of {host} timed out")
    found = outcome[0]
    if isinstance(found, BaseException):
        raise found
    return found  # type: ignore[return-value]


class _Deadline:
    """Closes the connection's socket when the whole attempt's time is up, so that no read
    (headers, a dripping body, a TLS handshake) can outlive it."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self.expired:
                self._kill()

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            self._kill()

    def _kill(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()

    def cancel(self) -> None:
        self._timer.cancel()


def _connect(
    host: str, port: int, scheme: str, limits: Limits, deadline: _Deadline
) -> socket.socket:
    last: OSError | None = None
    for family, address in _resolve_within(host, port, limits):
        sock = socket.socket(family, socket.SOCK_STREAM)
        deadline.watch(sock)
        sock.settimeout(limits.connect_timeout)
        try:
            target = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
            sock.connect(target)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        sock.settimeout(limits.read_timeout)
        if scheme == "https":
            tls = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            deadline.watch(tls)
            return tls
        return sock
    raise last or OSError(f"could not connect to {host}")


def post(url: str, body: bytes, headers: dict[str, str], limits: Limits) -> Response:
    """POST ``body`` to ``url`` once, in at most connect_timeout + read_timeout seconds overall
    (DNS, connect, TLS, headers and body together). Never raises for network or HTTP problems:
    the outcome is in the returned Response (``status`` None when no HTTP answer was read)."""
    started = time.monotonic()
    result = Response()
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = http.client.HTTPConnection(host, port, timeout=limits.read_timeout)
    deadline = _Deadline(limits.connect_timeout + limits.read_timeout)
    try:
        conn.sock = _connect(host, port, parts.scheme, limits, deadline)
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        result.status = resp.status
        result.headers = {k.lower(): v for k, v in resp.getheaders()}
        chunks: list[bytes] = []
        remaining = limits.max_bytes
        while remaining > 0:
            chunk = resp.read1(min(8192, remaining))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        result.body = b"".join(chunks)
        if deadline.expired:  # the socket was closed under a dripping body
            result.error = "timed out (the attempt's overall deadline passed)"
    except TargetRefused as exc:
        result.error, result.refused = str(exc), True
    except TimeoutError:
        result.error = "timed out"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if deadline.expired:
            result.error = "timed out (the attempt's overall deadline passed)"
        else:
            result.error = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        deadline.cancel()
        conn.close()
        result.duration_ms = int((time.monotonic() - started) * 1000)
    return result

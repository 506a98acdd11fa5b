"""Outbound HTTP to webhook receivers: URL rules, SSRF refusal, and a bounded POST.

The receiver is untrusted. The client therefore resolves the host itself, refuses private,
loopback, link-local and other non-global addresses (unless ``allow_private``), connects to the
address it checked (no second resolution an attacker could flip), never follows redirects, bounds
connect and read time and the total duration, and reads at most ``max_bytes`` of the response.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
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


def _allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
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


def _connect(host: str, port: int, scheme: str, limits: Limits) -> socket.socket:
    last: OSError | None = None
    for family, address in resolve(host, port, allow_private=limits.allow_private):
        sock = socket.socket(family, socket.SOCK_STREAM)
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
            return ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        return sock
    raise last or OSError(f"could not connect to {host}")


def post(url: str, body: bytes, headers: dict[str, str], limits: Limits) -> Response:
    """POST ``body`` to ``url`` once. Never raises for network or HTTP problems: the outcome is
    in the returned Response (``status`` None when no HTTP answer was read)."""
    started = time.monotonic()
    result = Response()
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = http.client.HTTPConnection(host, port, timeout=limits.read_timeout)
    try:
        conn.sock = _connect(host, port, parts.scheme, limits)
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        result.status = resp.status
        result.headers = {k.lower(): v for k, v in resp.getheaders()}
        deadline = started + limits.connect_timeout + limits.read_timeout
        chunks: list[bytes] = []
        remaining = limits.max_bytes
        while remaining > 0 and time.monotonic() < deadline:
            chunk = resp.read(min(8192, remaining))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        result.body = b"".join(chunks)
    except TargetRefused as exc:
        result.error, result.refused = str(exc), True
    except TimeoutError:
        result.error = "timed out"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        conn.close()
        result.duration_ms = int((time.monotonic() - started) * 1000)
    return result

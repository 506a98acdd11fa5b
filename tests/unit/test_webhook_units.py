"""Pure parts of webhook delivery: backoff schedule, Retry-After, URL rules, address checks,
signatures (cross-checked with the standardwebhooks package), secret encryption."""

from __future__ import annotations

import random
import socket
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import InvalidToken
from standardwebhooks import Webhook, WebhookVerificationError

from nhi import outbound, secretbox
from nhi.services import deliveries, webhooks


def test_backoff_is_exponential_with_jitter_and_spans_about_a_day():
    rng = random.Random(7)
    delays = [deliveries.retry_delay(n, rng=rng) for n in range(1, 10)]
    bases = [min(10 * 4 ** (n - 1), 6 * 3600) for n in range(1, 10)]
    for delay, base in zip(delays, bases, strict=True):
        assert 0.8 * base <= delay <= 1.2 * base
    assert len({round(d / b, 3) for d, b in zip(delays, bases, strict=True)}) > 1  # jittered
    total_hours = sum(bases) / 3600  # nine waits between ten attempts
    assert 18 <= total_hours <= 30
    assert deliveries.retry_delay(3, scale=0.01, rng=random.Random(1)) < 2


def test_retry_after_seconds_and_http_dates():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert deliveries.parse_retry_after("120", now) == 120
    assert deliveries.parse_retry_after("Thu, 01 Jan 2026 12:05:00 GMT", now) == 300
    assert deliveries.parse_retry_after("soon", now) is None
    assert deliveries.parse_retry_after(None, now) is None


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hooks.example.com/x?y=1", True),
        ("http://hooks.example.com:8080/", True),
        ("ftp://hooks.example.com/", False),
        ("javascript:alert(1)", False),
        ("https:///nohost", False),
        ("https://exa mple.com/", False),
        ("https://example.com:99999/", False),
    ],
)
def test_url_rules(url, ok):
    assert (outbound.url_problems(url) == []) is ok


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_private_loopback_and_link_local_targets_are_refused(host):
    with pytest.raises(outbound.TargetRefused):
        outbound.resolve(host, 443, allow_private=False)
    assert outbound.resolve(host, 443, allow_private=True)


def test_public_addresses_pass_and_unresolvable_names_are_left_to_connect_time():
    assert outbound.resolve("93.184.216.34", 443, allow_private=False)
    assert outbound.check_target("https://nhi-test.invalid/x", allow_private=False) is None
    with pytest.raises(socket.gaierror):
        outbound.resolve("nhi-test.invalid", 443, allow_private=False)


def test_refused_target_is_an_outcome_not_an_exception():
    result = outbound.post("http://127.0.0.1:9/x", b"{}", {}, outbound.Limits())
    assert result.status is None and result.refused and "loopback" in (result.error or "")


def test_signatures_match_the_standard_webhooks_library():
    secret, other = webhooks.new_secret(), webhooks.new_secret()
    body = b'{"id":"1","type":"nhi.created"}'
    ts = int(datetime.now(UTC).timestamp())
    header = deliveries._sign([secret, other], "msg_1", ts, body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(ts), "webhook-signature": header}
    for s in (secret, other):
        assert Webhook(s).verify(body, headers) == {"id": "1", "type": "nhi.created"}
    assert header.split(" ")[0] == Webhook(secret).sign(
        "msg_1", datetime.fromtimestamp(ts, UTC), body
    )
    stale = {**headers, "webhook-timestamp": str(ts - int(timedelta(hours=1).total_seconds()))}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, stale)


def test_secrets_are_encrypted_with_a_key_derived_from_the_jwt_secret(app):
    with app.app_context():
        token = secretbox.encrypt("whsec_abc")
        assert "abc" not in token and secretbox.decrypt(token) == "whsec_abc"
    other = type(app)("x")
    other.config["JWT_SECRET_KEY"] = "another-secret-another-secret-0123"
    with other.app_context(), pytest.raises(InvalidToken):
        secretbox.decrypt(token)

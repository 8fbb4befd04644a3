"""Webhooks' signature and address guard, without a server."""
from __future__ import annotations

import hashlib
import hmac

import pytest

from app.errors import Invalid
from app.services import webhooks
from app.services.webhooks import AddressRefused, address_allowed, resolve, sign, verify


def test_the_signature_is_hmac_sha256_over_the_timestamp_a_dot_and_the_body():
    body = b'{"id":"whd_1","event":"message"}'
    expected = hmac.new(b"whsec_k", b"1700000000." + body, hashlib.sha256).hexdigest()

    assert sign("whsec_k", "1700000000", body) == f"sha256={expected}"


def test_a_receiver_accepts_a_fresh_signed_body_and_refuses_a_changed_one_or_a_replay():
    body = b'{"id":"whd_1"}'
    signature = sign("whsec_k", "1700000000", body)

    assert verify("whsec_k", "1700000000", body, signature, now=1700000100)
    assert not verify("whsec_k", "1700000000", body + b" ", signature, now=1700000100)
    assert not verify("whsec_other", "1700000000", body, signature, now=1700000100)
    assert not verify("whsec_k", "1700000001", body, signature, now=1700000100)
    assert not verify("whsec_k", "1700000000", body, signature, now=1700000000 + 301)
    assert not verify("whsec_k", "not-a-time", body, signature, now=1700000000)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1",
    "169.254.169.254", "fe80::1", "fc00::1", "100.64.0.1", "0.0.0.0", "::", "224.0.0.1",
    "ff02::1", "240.0.0.1", "255.255.255.255", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "192.0.2.1", "198.18.0.1",
])
def test_non_public_addresses_are_refused(address):
    assert not address_allowed(address, allow_private=False)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::6810:85e5", "8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert address_allowed(address, allow_private=False)


def test_the_operator_may_allow_private_networks():
    assert address_allowed("127.0.0.1", allow_private=True)
    assert address_allowed("10.0.0.1", allow_private=True)


def test_a_host_name_is_refused_when_it_resolves_to_a_loopback_address():
    with pytest.raises(AddressRefused, match="localhost resolves to"):
        resolve("localhost", 80, allow_private=False)
    assert resolve("localhost", 80, allow_private=True) in ("127.0.0.1", "::1")


def test_a_literal_address_is_checked_as_it_is():
    with pytest.raises(AddressRefused):
        resolve("127.0.0.1", 80, allow_private=False)
    assert resolve("93.184.215.14", 80, allow_private=False) == "93.184.215.14"


@pytest.mark.parametrize("url, message", [
    ("ftp://example.com/hook", "http:// or https://"),
    ("https:///nohost", "http:// or https://"),
    ("https://user:pass@example.com/hook", "credentials"),
    ("http://127.0.0.1:9000/hook", "not a public address"),
    ("http://[::1]/hook", "not a public address"),
    ("http://example.com:99999/", "not a valid URL"),
    ("", "1 to 2000"),
])
def test_a_url_that_cannot_be_a_webhook_is_refused_at_registration(app, url, message):
    with app.app_context(), pytest.raises(Invalid, match=message):
        webhooks.check_url(url)


def test_backoff_doubles_with_jitter_up_to_the_cap():
    cfg = {"WEBHOOK_BACKOFF_SECONDS": 10, "WEBHOOK_MAX_BACKOFF_SECONDS": 3600}
    for attempt, base in ((1, 10), (2, 20), (5, 160)):
        delays = [webhooks.backoff(attempt, cfg) for _ in range(200)]
        assert all(base * 0.5 <= d <= base * 1.5 for d in delays)
        assert max(delays) - min(delays) > base * 0.3  # jittered, not constant
    assert webhooks.backoff(40, cfg) == 3600


def test_a_lease_shorter_than_an_attempt_can_last_is_refused_at_start(monkeypatch):
    from app import create_app

    monkeypatch.setenv("PARLEY_ENV", "testing")
    with pytest.raises(RuntimeError, match="WEBHOOK_LEASE_SECONDS must be longer"):
        create_app({"WEBHOOK_CONNECT_TIMEOUT_SECONDS": 5, "WEBHOOK_READ_TIMEOUT_SECONDS": 10,
                    "WEBHOOK_LEASE_SECONDS": 20})

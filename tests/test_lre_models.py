"""Pure LRE code: webhook signatures, channel choice, AR24 parsing, error classes."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.lre import (
    LreMaintenance,
    LrePermanentError,
    LreRateLimited,
    LreTemporaryError,
    ProviderMail,
    ProviderStatus,
    SignatureError,
    choose_channel,
    event_of_status,
    sign_webhook,
    split_name,
    verify_webhook,
)
from models.payloads import Channel, LreEventKind, Policyholder

SECRET = "s3cret"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
T = int(NOW.timestamp())


def test_signature_header_format_is_documented_construction():
    body = b'{"event_id":"evt_1_AR"}'
    header = sign_webhook(SECRET, body, T)
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={T},v1={expected}"
    assert verify_webhook(SECRET, body, header, now=NOW) == T


@given(body=st.binary(max_size=512), skew=st.integers(min_value=-300, max_value=300))
def test_any_body_signed_within_tolerance_verifies(body, skew):
    header = sign_webhook(SECRET, body, T + skew)
    assert verify_webhook(SECRET, body, header, now=NOW) == T + skew


@given(body=st.binary(min_size=1, max_size=256), flip=st.integers(min_value=0, max_value=255))
def test_any_tampered_body_is_rejected(body, flip):
    header = sign_webhook(SECRET, body, T)
    i = flip % len(body)
    tampered = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
    with pytest.raises(SignatureError, match="does not match"):
        verify_webhook(SECRET, tampered, header, now=NOW)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v1=abc", "must be"),
        (f"t={T}", "must be"),
        ("t=yesterday,v1=abc", "malformed timestamp"),
        ("garbage", "malformed"),
        (f"t={T},v1=" + "0" * 64, "does not match"),
    ],
)
def test_bad_headers_are_rejected_with_a_reason(header, reason):
    with pytest.raises(SignatureError, match=reason):
        verify_webhook(SECRET, b"{}", header, now=NOW)


def test_wrong_secret_and_stale_or_future_deliveries_are_rejected():
    with pytest.raises(SignatureError, match="does not match"):
        verify_webhook(SECRET, b"{}", sign_webhook("other", b"{}", T), now=NOW)
    with pytest.raises(SignatureError, match="stale"):
        verify_webhook(SECRET, b"{}", sign_webhook(SECRET, b"{}", T - 301), now=NOW)
    with pytest.raises(SignatureError, match="stale"):
        verify_webhook(SECRET, b"{}", sign_webhook(SECRET, b"{}", T + 301), now=NOW)
    # key rotation: several v1 values, one of them right
    good = sign_webhook(SECRET, b"{}", T).split("v1=")[1]
    assert verify_webhook(SECRET, b"{}", f"t={T},v1={'f' * 64},v1={good}", now=NOW) == T


def holder(email: str | None, consent: bool, professional: bool = False) -> Policyholder:
    return Policyholder(
        name="Jeanne Martin", email=email, lre_consent=consent, is_professional=professional
    )


@pytest.mark.parametrize(
    ("email", "consent", "pro", "preferred", "bounced", "expected"),
    [
        ("j@example.org", True, False, Channel.LRE, False, Channel.LRE),
        ("j@example.org", False, False, Channel.LRE, False, Channel.PAPER),  # CPCE L100 consent
        ("rh@acme.example", False, True, Channel.LRE, False, Channel.LRE),  # professional
        (None, True, False, Channel.LRE, False, Channel.PAPER),
        ("not-an-address", True, False, Channel.LRE, False, Channel.PAPER),
        ("j@example.org", True, False, Channel.LRE, True, Channel.PAPER),  # after a bounce
        ("j@example.org", False, False, Channel.ERE, False, Channel.ERE),  # reminders
        (None, False, False, Channel.ERE, False, Channel.PAPER),
        ("j@example.org", True, False, Channel.PAPER, False, Channel.PAPER),
    ],
)
def test_choose_channel(email, consent, pro, preferred, bounced, expected):
    assert (
        choose_channel(holder(email, consent, pro), preferred, electronic_bounced=bounced)
        is expected
    )


def test_ar24_mail_parsing_and_event_mapping():
    mail = ProviderMail.from_ar24(
        {
            "id": 12,
            "status": "refused",
            "date": "2026-11-13 09:30:00",  # AR24 prints Paris wall-clock time
            "status_date": "2026-11-14T08:00:00+00:00",
            "ref_client": "L-1",
            "ref_dossier": "C-1",
            "eidas": "1",
            "proof_ev_url": "https://p/ev",
            "proof_rf_url": "https://p/rf",
            "proof_ar_url": None,
            "sha256": "ab" * 32,
        }
    )
    assert mail.id == "12" and mail.status is ProviderStatus.REFUSED
    assert mail.deposited_at == datetime(2026, 11, 13, 8, 30, tzinfo=UTC)  # CET = UTC+1
    assert mail.proofs == {"deposit": "https://p/ev", "refusal": "https://p/rf"}
    assert mail.event is LreEventKind.REFUSED and mail.current_proof_url == "https://p/rf"
    assert event_of_status("AR") is LreEventKind.ACCEPTED
    assert event_of_status("negligence") is LreEventKind.NEGLIGENCE
    assert event_of_status("bounced") is LreEventKind.BOUNCED
    assert event_of_status("waiting") is None


def test_error_classes_carry_temporal_retry_semantics():
    assert LrePermanentError("invalid_recipient", "x").non_retryable is True
    assert LrePermanentError("invalid_recipient", "x").type == "LrePermanentError"
    assert LreTemporaryError("boom").non_retryable is False
    assert LreMaintenance().code == "maintenance" and isinstance(
        LreMaintenance(), LreTemporaryError
    )
    limited = LreRateLimited(12)
    assert limited.next_retry_delay == timedelta(seconds=12) and not limited.non_retryable


def test_split_name():
    assert split_name("Jeanne Marie Martin") == ("Jeanne Marie", "Martin")
    assert split_name("ACME") == ("", "ACME")

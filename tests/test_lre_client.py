"""LreClient against the AR24-compatible simulator over real HTTP on loopback."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from activities.lre_client import LreClient
from models.lre import (
    LreMaintenance,
    LreNotFound,
    LrePermanentError,
    LreRateLimited,
    LreTemporaryError,
    ProviderSendRequest,
    ProviderStatus,
)
from simulators.lre_sim import create_app, proof_pdf
from tests.test_lre_support import (
    TOKEN,
    ServerThread,
    SimAdmin,
    eventually,
    free_port,
    make_settings,
    make_sim_settings,
)

PDF = proof_pdf(["lettre de test", "mise en demeure"])


def req(letter_id: str, email: str = "jeanne.martin@example.org", **kw) -> ProviderSendRequest:
    return ProviderSendRequest(
        letter_id=letter_id,
        contract_id="C-1",
        to_email=email,
        to_firstname="Jeanne",
        to_lastname="Martin",
        pdf=PDF,
        **kw,
    )


@pytest_asyncio.fixture
async def sim(tmp_path):
    sim_port, api_port = free_port(), free_port()
    settings = make_settings(tmp_path, sim_port=sim_port, api_port=api_port)
    server = ServerThread(
        create_app(settings, make_sim_settings(settings, sim_port=sim_port)), sim_port
    ).start()
    client = LreClient(settings.lre_base_url, TOKEN, timeout=2.0)
    admin = SimAdmin(server.url)
    try:
        yield server, client, admin, settings
    finally:
        await client.aclose()
        await admin.aclose()
        server.stop()


async def test_send_returns_deposit_proof_at_once(sim):
    _, client, _, _ = sim
    before = datetime.now(UTC)
    mail = await client.send(req("L-1", email="jeanne+wait@example.org"))
    assert mail.status is ProviderStatus.WAITING
    assert mail.ref_client == "L-1" and mail.ref_dossier == "C-1"
    assert mail.deposited_at.tzinfo is not None
    assert before - timedelta(seconds=1) <= mail.deposited_at <= datetime.now(UTC)
    assert mail.content_sha256 == hashlib.sha256(PDF).hexdigest()
    proof = await client.download(mail.proofs["deposit"])
    assert proof.startswith(b"%PDF-") and mail.id.encode() in proof

    found = await client.find_by_reference("L-1")
    assert found is not None and found.id == mail.id
    assert await client.find_by_reference("L-unknown") is None
    again = await client.get(mail.id)
    assert again.deposited_at == mail.deposited_at and again.status is ProviderStatus.WAITING


async def test_our_token_never_goes_to_another_origin(sim):
    _, client, _, _ = sim
    mail = await client.send(req("L-origin", email="jeanne+wait@example.org"))
    url = mail.proofs["deposit"]
    assert (await client.download(url)).startswith(b"%PDF-")
    # same server, other origin (host name): the request leaves without our token
    with pytest.raises(LreTemporaryError) as info:
        await client.download(url.replace("127.0.0.1", "localhost"))
    assert info.value.code == "unauthorized"


async def test_ere_is_the_same_api_without_eidas(sim):
    _, client, admin, _ = sim
    mail = await client.send(req("L-ere", eidas=False))
    assert mail.eidas is False
    [stored] = await admin.mails("L-ere")
    assert stored["type"] == "ere"


async def test_invalid_recipient_is_permanent(sim):
    _, client, admin, _ = sim
    with pytest.raises(LrePermanentError) as info:
        await client.send(req("L-bad", email="jeanne@nowhere.invalid"))
    assert info.value.code == "invalid_recipient"
    assert info.value.non_retryable is True
    assert await admin.mails("L-bad") == []
    with pytest.raises(LreNotFound):
        await client.get("999999")


async def test_maintenance_rate_limit_and_5xx_are_retryable_and_do_nothing(sim):
    _, client, admin, _ = sim
    await admin.faults(maintenance=True)
    with pytest.raises(LreMaintenance) as m:
        await client.send(req("L-m"))
    assert m.value.non_retryable is False
    await admin.faults(maintenance=False, rate_limit_next=1, retry_after_seconds=7)
    with pytest.raises(LreRateLimited) as rl:
        await client.send(req("L-m"))
    assert rl.value.retry_after == 7 and rl.value.next_retry_delay == timedelta(seconds=7)
    await admin.faults(fail_next=1)
    with pytest.raises(LreTemporaryError) as t:
        await client.send(req("L-m"))
    assert t.value.code == "http_500" and not t.value.non_retryable
    assert await admin.mails("L-m") == []  # none of these did anything at the provider
    mail = await client.send(req("L-m"))  # the provider is back
    assert [m["id"] for m in await admin.mails("L-m")] == [mail.id]


async def test_timeout_is_ambiguous_the_provider_may_have_the_letter(sim):
    _, client, admin, _ = sim
    await admin.faults(timeout_next=1)
    started = time.monotonic()
    with pytest.raises(LreTemporaryError) as info:
        await client.send(req("L-t"))
    assert info.value.code == "timeout" and time.monotonic() - started < 4
    # The request was executed: that is why a retry must look the letter up first.
    found = await client.find_by_reference("L-t")
    assert found is not None and len(await admin.mails("L-t")) == 1


async def test_bad_token_is_reported(sim):
    _, _, _, settings = sim
    async with LreClient(settings.lre_base_url, "wrong-token", timeout=2.0) as bad:
        with pytest.raises(LreTemporaryError) as info:
            await bad.find_by_reference("x")
    assert info.value.code == "unauthorized"


async def test_unreachable_provider_is_temporary(tmp_path):
    async with LreClient(f"http://127.0.0.1:{free_port()}/api/", TOKEN, timeout=1.0) as client:
        with pytest.raises(LreTemporaryError) as info:
            await client.find_by_reference("x")
    assert info.value.code == "unreachable"


@pytest.mark.parametrize(
    ("email", "status", "proof"),
    [
        ("jeanne@example.org", ProviderStatus.AR, "receipt"),
        ("jeanne+refuse@example.org", ProviderStatus.REFUSED, "refusal"),
        ("jeanne+bounce@example.org", ProviderStatus.BOUNCED, "bounce"),
        ("jeanne+negligence@example.org", ProviderStatus.NEGLIGENCE, "negligence"),
    ],
)
async def test_scenarios_by_recipient_local_part(sim, email, status, proof):
    _, client, _, _ = sim
    mail = await client.send(req(f"L-{status.value}", email=email))

    async def settled():
        m = await client.get(mail.id)
        return m if m.status is not ProviderStatus.WAITING else None

    final = await eventually(settled, timeout=10, what=f"{status.value} outcome")
    assert final.status is status
    assert final.status_at is not None and final.status_at > final.deposited_at
    data = await client.download(final.proofs[proof])
    assert data.startswith(b"%PDF-") and proof.encode() in data
    if status is ProviderStatus.NEGLIGENCE:
        # 15 days + the day after, at 0.05 s per day on the compressed clock
        assert final.status_at - final.deposited_at >= timedelta(seconds=16 * 0.05)


async def test_mails_survive_a_simulator_restart(tmp_path):
    sim_port, api_port = free_port(), free_port()
    settings = make_settings(tmp_path, sim_port=sim_port, api_port=api_port)
    sim_settings = make_sim_settings(settings, sim_port=sim_port)
    server = ServerThread(create_app(settings, sim_settings), sim_port).start()
    async with LreClient(settings.lre_base_url, TOKEN) as client:
        first = await client.send(req("L-persist", email="j+wait@example.org"))
        server.stop()
        server = ServerThread(create_app(settings, sim_settings), sim_port).start()
        try:
            again = await client.get(first.id)
            second = await client.send(req("L-persist-2", email="j+wait@example.org"))
        finally:
            server.stop()
    assert again.deposited_at == first.deposited_at and again.content_sha256 == first.content_sha256
    assert second.id != first.id

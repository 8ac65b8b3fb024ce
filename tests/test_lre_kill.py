"""Kill the sending process (SIGKILL) at each step of a send, then run it again.

Each send runs in its own Python process (``python -m tests.test_lre_kill …``, the
``main`` below) exactly as a worker would run it: real SQLite file, real PDF, real HTTP
to the simulator. The process kills itself at a named step through ``LetterSender``'s
``on_step`` hook, or is killed from outside while the provider holds its request. After
each kill the send is run again to completion, and the test checks: exactly one letter
at the provider, and a letter record that agrees with it (id, timestamp, hash, file).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import pytest_asyncio
from sqlmodel import Session

from activities.db import make_engine
from models.payloads import DepositRecorded
from models.tables import LetterRecord
from simulators.lre_sim import create_app
from tests.test_lre_support import (
    TOKEN,
    ServerThread,
    SimAdmin,
    eventually,
    free_port,
    make_settings,
    make_sim_settings,
)

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> None:
    """Subprocess entry: send one letter, dying at ``kill_at`` if given."""
    from activities.lre_client import LreClient
    from activities.sending import LetterSender
    from models.policy import SenderIdentity
    from tests.test_lre_support import HtmlPdfRenderer, letter_ctx

    db_url, letters_dir, base_url, letter_id, contract_id, kill_at = argv

    def on_step(step: str) -> None:
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    async def run() -> None:
        async with LreClient(base_url, TOKEN, timeout=30.0) as lre:
            sender = LetterSender(
                make_engine(db_url), lre, Path(letters_dir), HtmlPdfRenderer, on_step=on_step
            )
            ctx = letter_ctx(letter_id, contract_id, email="jeanne+wait@example.org")
            deposit = await sender.send(ctx, SenderIdentity())
        print(deposit.model_dump_json())

    asyncio.run(run())


@pytest_asyncio.fixture
async def sim(tmp_path):
    sim_port = free_port()
    settings = make_settings(tmp_path, sim_port=sim_port, api_port=free_port())
    server = ServerThread(
        create_app(settings, make_sim_settings(settings, sim_port=sim_port, timeout_seconds=60.0)),
        sim_port,
    ).start()
    admin = SimAdmin(server.url)
    try:
        yield settings, admin
    finally:
        await admin.aclose()
        server.stop()


def _spawn(settings, letter_id: str, contract_id: str, kill_at: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.test_lre_kill",
            settings.resolved_database_url,
            str(settings.letters_dir),
            settings.lre_base_url,
            letter_id,
            contract_id,
            kill_at,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _wait(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = await asyncio.to_thread(proc.communicate, timeout=120)
    return proc.returncode, out, err


def _record(settings, letter_id: str) -> LetterRecord | None:
    with Session(make_engine(settings.resolved_database_url)) as s:
        return s.get(LetterRecord, letter_id)


# step → (mails at the provider, letter status) right after the kill
EXPECTED_AFTER_KILL = {
    "before_provider": (0, "sending"),
    "after_provider": (1, "sending"),  # the provider accepted, we never wrote it down
    "after_write": (1, "deposited"),
}


@pytest.mark.parametrize("step", list(EXPECTED_AFTER_KILL))
async def test_sigkill_at_each_step_then_rerun_sends_exactly_once(sim, step):
    settings, admin = sim
    letter_id, contract_id = f"K-{step}.r1.formal_notice.1", f"K-{step}"
    code, out, err = await _wait(_spawn(settings, letter_id, contract_id, kill_at=step))
    assert code == -signal.SIGKILL, err
    assert out == ""
    mails, status = EXPECTED_AFTER_KILL[step]
    assert len(await admin.mails(letter_id)) == mails
    assert _record(settings, letter_id).status == status

    code, out, err = await _wait(_spawn(settings, letter_id, contract_id, kill_at="none"))
    assert code == 0, err
    await _assert_exactly_one_consistent_letter(
        settings, admin, letter_id, DepositRecorded.model_validate_json(out)
    )


async def test_sigkill_while_the_provider_holds_the_request(sim):
    """Killed from outside after the provider stored the letter but before it answered."""
    settings, admin = sim
    letter_id, contract_id = "K-inflight.r1.formal_notice.1", "K-inflight"
    await admin.faults(timeout_next=1)  # the provider executes, then answers after 60 s
    proc = _spawn(settings, letter_id, contract_id, kill_at="none")

    async def stored():
        return await admin.mails(letter_id)

    await eventually(stored, timeout=60, what="the provider to store the letter")
    proc.send_signal(signal.SIGKILL)
    code, out, _ = await _wait(proc)
    assert code == -signal.SIGKILL and out == ""
    assert _record(settings, letter_id).status == "sending"

    code, out, err = await _wait(_spawn(settings, letter_id, contract_id, kill_at="none"))
    assert code == 0, err
    await _assert_exactly_one_consistent_letter(
        settings, admin, letter_id, DepositRecorded.model_validate_json(out)
    )


async def _assert_exactly_one_consistent_letter(
    settings, admin: SimAdmin, letter_id: str, deposit: DepositRecorded
) -> None:
    [mail] = await admin.mails(letter_id)
    rec = _record(settings, letter_id)
    archived = Path(rec.file_path).read_bytes()
    assert rec.status == "deposited"
    assert rec.provider_id == deposit.provider_id == mail["id"]
    assert rec.sha256 == deposit.sha256 == mail["sha256"] == hashlib.sha256(archived).hexdigest()
    assert deposit.deposited_at == datetime.fromisoformat(mail["date"])
    assert (
        rec.deposited_at.replace(tzinfo=None)
        == deposit.deposited_at.replace(tzinfo=None) - deposit.deposited_at.utcoffset()
    )
    assert rec.proofs["deposit"] == mail["proof_ev_url"] == deposit.proof_url


if __name__ == "__main__":
    main(sys.argv[1:])

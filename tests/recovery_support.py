"""Helpers for recovery workflow tests: cases, a worker with real database activities, and
a provider double that stands in for the LRE provider where the provider is not the point.

The double returns the certified deposit at the activity's scheduled time, which on the
time-skipping server is the skipped clock, so legal instants can be asserted exactly.
"""

from __future__ import annotations

import hashlib
import uuid
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.db import make_engine
from activities.recovery import RecoveryActivities
from models import calendar as cal
from models.letters import LetterContext
from models.payloads import CaseStatus, Channel, DepositRecorded, UnpaidCase
from models.policy import load_policies
from models.recovery import LitigationRequest
from models.settings import Settings
from worker import build_worker


class ProviderDouble:
    """Records every letter 'sent'; deposits LRE/ERE at once, paper waits for the mailroom."""

    def __init__(self) -> None:
        self.sent: list[LetterContext] = []
        self.invalid_recipient_for: set[tuple[str, int]] = set()  # (letter kind, attempt)

    @activity.defn(name="send_letter")
    async def send_letter(self, ctx: LetterContext) -> DepositRecorded:
        if (ctx.kind.value, ctx.attempt) in self.invalid_recipient_for:
            from temporalio.exceptions import ApplicationError

            raise ApplicationError("invalid recipient", type="LrePermanentError", non_retryable=True)
        if ctx.letter_id not in {c.letter_id for c in self.sent}:
            self.sent.append(ctx)
        digest = hashlib.sha256(ctx.model_dump_json().encode()).hexdigest()
        if ctx.channel is Channel.PAPER:
            return DepositRecorded(letter_id=ctx.letter_id, provider_id=None, channel=ctx.channel,
                                   sha256=digest, deposited_at=None, status="awaiting_deposit")
        return DepositRecorded(
            letter_id=ctx.letter_id, provider_id=f"P-{ctx.letter_id}", channel=ctx.channel, sha256=digest,
            deposited_at=activity.info().current_attempt_scheduled_time, status="deposited",
        )

    @activity.defn(name="hand_over_to_litigation")
    def hand_over_to_litigation(self, req: LitigationRequest) -> str:
        return f"LIT-{req.case.contract_id}"

    def kinds(self) -> list[str]:
        return [c.kind.value for c in self.sent]


def make_case(contract_id: str | None = None, *, due: date, regime: str = "iard", amount: str = "120.00",
              paid_on_period: str = "0", email: str | None = "alice@example.org", consent: bool = True,
              portfolio: str = "default", **extra) -> UnpaidCase:
    return UnpaidCase.model_validate({
        "contract_id": contract_id or f"C-{uuid.uuid4().hex[:10]}",
        "regime": regime,
        "portfolio": portfolio,
        "policyholder": {
            "name": "Alice Martin", "email": email, "lre_consent": consent,
            "address": {"line1": "3 rue des Lilas", "postal_code": "69003", "city": "Lyon", "country": "FR"},
        },
        "installments": [{"due_date": due.isoformat(), "amount": amount}],
        "period_premium": str(Decimal(amount) * 12),
        "paid_on_period": paid_on_period,
        "currency": "EUR",
        **extra,
    })


@asynccontextmanager
async def recovery_worker(client: Client, tmp_path: Path, *, provider: ProviderDouble | None = None,
                          policies_file: Path | None = None):
    settings = Settings(data_dir=tmp_path, policies_file=policies_file, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    engine = make_engine(settings.resolved_database_url)
    real = RecoveryActivities(engine, load_policies(policies_file), settings.letters_dir)
    provider = provider or ProviderDouble()
    acts = [real.load_policy, real.sync_case, real.record_payment, provider.send_letter, provider.hand_over_to_litigation]
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, activities=acts, task_queue=task_queue):
        yield task_queue, provider, engine


async def start_case(client: Client, case: UnpaidCase, task_queue: str) -> WorkflowHandle:
    return await client.start_workflow(
        "UnpaidPremiumWorkflow", case, id=f"unpaid-{case.contract_id}", task_queue=task_queue,
        result_type=CaseStatus,
    )


async def sleep_until(env: WorkflowEnvironment, at: datetime) -> None:
    now = await env.get_current_time()
    if at > now:
        await env.sleep(at - now)


async def paris_today(env: WorkflowEnvironment) -> date:
    return cal.paris_date(await env.get_current_time())


def one_second() -> timedelta:
    return timedelta(seconds=1)


class GatedProvider(ProviderDouble):
    """Holds every formal notice inside the activity until the test opens the gate, so a
    message can arrive while the letter is being sent."""

    def __init__(self) -> None:
        super().__init__()
        import asyncio

        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    @activity.defn(name="send_letter")
    async def send_letter(self, ctx: LetterContext) -> DepositRecorded:
        if ctx.kind.value == "formal_notice":
            self.waiting.set()
            await self.gate.wait()
        return await ProviderDouble.send_letter(self, ctx)


class DownProvider(ProviderDouble):
    """A provider that answers 5xx until ``down`` is cleared (retryable failures)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.calls = 0

    @activity.defn(name="send_letter")
    async def send_letter(self, ctx: LetterContext) -> DepositRecorded:
        self.calls += 1
        if self.down and ctx.kind.value == "formal_notice":
            from temporalio.exceptions import ApplicationError

            raise ApplicationError("provider answered 503 maintenance", type="LreMaintenance")
        return await ProviderDouble.send_letter(self, ctx)

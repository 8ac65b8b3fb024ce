"""Record UnpaidPremiumWorkflow histories for the replay test.

Run after an intentional, versioned change of the workflow (never to silence a failing
replay): ``.venv/bin/python -m tests.histories.generate_unpaid``.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from models.payloads import CaseStatus, Payment
from tests.conftest import _binary, register_search_attributes
from tests.recovery_support import make_case, paris_today, recovery_worker, start_case

OUT = Path(__file__).resolve().parent


async def scenario(env, tmp: Path, name: str) -> None:
    client = env.client
    async with recovery_worker(client, tmp / name) as (tq, provider, _):
        today = await paris_today(env)
        if name == "unpaid_litigation":
            h = await start_case(client, make_case(f"H-{name}", due=today + timedelta(days=1)), tq)
        elif name == "unpaid_reinstated":
            h = await start_case(client, make_case(f"H-{name}", due=today - timedelta(days=20)), tq)
            await env.sleep(timedelta(days=35))
            await h.signal("installment_due", {"due_date": (today + timedelta(days=30)).isoformat(), "amount": "120.00"})
            await env.sleep(timedelta(seconds=1))
            now = await env.get_current_time()
            await h.execute_update("register_payment", Payment(payment_id="P1", amount=Decimal("240"), received_at=now),
                                   result_type=CaseStatus)
        elif name == "unpaid_bounce_hold_signals":
            h = await start_case(client, make_case(f"H-{name}", due=today - timedelta(days=20)), tq)
            await env.sleep(timedelta(hours=2))
            st = await h.query("status", result_type=CaseStatus)
            notice = st.letters[-1].letter_id
            await h.signal("payment_received", {"payment_id": "bad", "amount": "abc"})
            await h.signal("lre_event", {"letter_id": notice, "event": "bounced",
                                         "occurred_at": (await env.get_current_time()).isoformat()})
            await env.sleep(timedelta(hours=2))
            st = await h.query("status", result_type=CaseStatus)
            await h.signal("lre_event", {"letter_id": st.letters[-1].letter_id, "event": "deposited",
                                         "occurred_at": (await env.get_current_time()).isoformat(),
                                         "tracking_number": "1A234"})
            await h.signal("hold", {"reason": "premium disputed"})
            await env.sleep(timedelta(days=10))
            await h.signal("resume")
            await env.sleep(timedelta(days=1))
            await h.signal("payment_received", {"payment_id": "P2", "amount": "20", "received_at": (await env.get_current_time()).isoformat()})
        elif name == "unpaid_vie":
            h = await start_case(client, make_case(f"H-{name}", due=today - timedelta(days=20), regime="vie"), tq)
        else:
            raise ValueError(name)
        await h.result()
        history = await h.fetch_history()
        (OUT / f"{name}.json").write_text(history.to_json(), encoding="utf-8")
        print("wrote", name)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("unpaid_litigation", "unpaid_reinstated", "unpaid_bounce_hold_signals", "unpaid_vie"):
            env = await WorkflowEnvironment.start_time_skipping(
                data_converter=pydantic_data_converter, test_server_existing_path=_binary("temporal-test-server"))
            try:
                await register_search_attributes(env.client)
                await scenario(env, Path(tmp), name)
            finally:
                await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())

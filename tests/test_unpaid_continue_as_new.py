"""A long, chatty case continues as new with its whole state (real dev server whose
continue-as-new suggestion threshold is lowered so the test stays short)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import Session, select
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from models import search_attributes as sa
from models.payloads import CaseStatus
from models.tables import CaseEvent
from tests.recovery_support import make_case, paris_today, recovery_worker, start_case

pytestmark = pytest.mark.devserver


async def test_chatty_case_continues_as_new_and_keeps_everything(temporal_cli_path, tmp_path):
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, dev_server_existing_path=temporal_cli_path,
        search_attributes=sa.ALL,
        dev_server_extra_args=["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=120"],
    )
    try:
        client = env.client
        async with recovery_worker(client, tmp_path) as (tq, provider, engine):
            due = await paris_today(env) - timedelta(days=20)
            started = await start_case(client, make_case(due=due), tq)
            handle = client.get_workflow_handle(started.id, result_type=CaseStatus)
            for _ in range(100):
                st = await handle.query("status", result_type=CaseStatus)
                if st.stage.value == "notice_sent":
                    break
                await asyncio.sleep(0.1)
            before = st
            notice = next(lt for lt in before.letters if lt.kind.value == "formal_notice")
            # the provider re-delivers the same outcome again and again (each a no-op)
            for _ in range(60):
                await handle.signal("lre_event", {"letter_id": notice.letter_id, "event": "accepted",
                                                  "occurred_at": before.notice_sent_at.isoformat()})
            for _ in range(100):
                desc = await handle.describe()
                if desc.run_id != started.first_execution_run_id:
                    break
                await asyncio.sleep(0.1)
            assert desc.run_id != started.first_execution_run_id, "never continued as new"
            after = await handle.query("status", result_type=CaseStatus)
            assert after.stage == before.stage and after.suspension_at == before.suspension_at
            assert [lt.letter_id for lt in after.letters] == [lt.letter_id for lt in before.letters]
            assert after.letters[-1].status == "accepted"
            assert [h.kind for h in after.history][: len(before.history)] == [h.kind for h in before.history]
            assert provider.kinds().count("formal_notice") == 1  # nothing re-sent by the new run
            await handle.signal("cancel", {"reason": "test over"})
            result = await handle.result()
            assert result.stage.value == "cancelled"
            with Session(engine) as db:
                events = db.exec(select(CaseEvent).where(CaseEvent.workflow_id == started.id)).all()
            assert len(events) == len(result.history) and len({e.run_id for e in events}) == 2
    finally:
        await env.shutdown()

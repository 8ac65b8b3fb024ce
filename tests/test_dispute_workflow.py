"""DisputeWorkflow on the time-skipping server: clocks, alerts, breach and escalation,
answer letters, mediation, recovery hold/resume, bad messages."""

from __future__ import annotations

import asyncio
import os
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from pypdf import PdfReader
from sqlmodel import Session, select
from temporalio.client import WorkflowUpdateFailedError

from models.calendar import PARIS
from models.disputes import (
    Acknowledge,
    CategoryCorrection,
    Close,
    CustomerMessage,
    CustomerReply,
    Decision,
    Dispute,
    DisputeAlert,
    DisputeCategory,
    DisputeConfig,
    DisputeFollowUp,
    DisputeRecord,
    DisputeSatisfaction,
    DisputeStage,
    DisputeStatus,
    Escalation,
    EscalationLevel,
    EthicsOpinion,
    Handler,
    InformationRequest,
    MediationOutcome,
    MediationReferral,
    MediatorOpinion,
    Member,
    Outcome,
    Satisfaction,
    SlaState,
    TriageCorrectionRecord,
)
from models.tables import CaseEvent
from tests.test_dispute_helpers import (
    RecordingRecovery,
    at_paris,
    dispute_worker,
    new_id,
    register_search_attributes,
    sleep_until,
)
from workflows.dispute import DisputeWorkflow

HISTORIES = Path(__file__).parent / "histories"


@pytest_asyncio.fixture
async def env(ts_env):
    """A fresh time-skipping server per test (custom search attributes registered)."""
    await register_search_attributes(ts_env.client)
    return ts_env


def _dispute(received_at: datetime, **kw) -> Dispute:
    base = dict(
        dispute_id=new_id(),
        member=Member(name="Mme Claire Dubois", email="claire.dubois@example.org", member_id="M-1042"),
        received_at=received_at,
        channel="email",
        subject="Remboursement dentaire insuffisant",
        description="Ma couronne n'a été remboursée que 120 euros au lieu des 300 % prévus.",
        category=DisputeCategory.REIMBURSEMENT,
    )
    base.update(kw)
    return Dispute(**base)


async def _start(env, queue: str, dispute: Dispute):
    return await env.client.start_workflow(
        DisputeWorkflow.run, dispute, id=f"dispute-{dispute.dispute_id}", task_queue=queue
    )


async def _status(handle) -> DisputeStatus:
    return await handle.query(DisputeWorkflow.status)


async def _wait_for(handle, predicate, timeout: float = 20.0) -> DisputeStatus:
    """Poll the query until the workflow reached a state (no time skipping involved)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        st = await _status(handle)
        if predicate(st):
            return st
        if loop.time() > deadline:
            raise AssertionError(f"state not reached; stage={st.stage} history={[h.kind for h in st.history]}")
        await asyncio.sleep(0.1)


def _kinds(st: DisputeStatus) -> list[str]:
    return [h.kind for h in st.history]


async def test_christmas_dispute_clocks_search_attributes_and_details(env, tmp_path):
    async with dispute_worker(env.client, tmp_path) as (queue, engine):
        d = _dispute(at_paris(2026, 12, 18, 15))
        handle = await _start(env, queue, d)
        try:
            st = await _wait_for(handle, lambda s: "clock_answer" in _kinds(s))
            ack, answer = st.clocks
            assert (ack.last_day, answer.last_day) == (date(2026, 12, 31), date(2027, 2, 16))
            assert ack.due_at == datetime(2027, 1, 1, tzinfo=PARIS)
            assert answer.due_at == datetime(2027, 2, 17, tzinfo=PARIS)
            assert st.stage is DisputeStage.RECEIVED and st.category is DisputeCategory.REIMBURSEMENT
            assert st.sla_due_at == ack.due_at

            # Search attributes and current details for operators in the UI.
            desc = await _wait_for_description(handle)
            attrs = desc.typed_search_attributes
            from models import search_attributes as sa

            assert attrs.get(sa.DISPUTE_STAGE) == "received"
            assert attrs.get(sa.DISPUTE_CATEGORY) == "reimbursement"
            assert attrs.get(sa.SLA_DUE_AT) == ack.due_at
            assert attrs.get(sa.SLA_STATUS) in ("on_track", "at_risk", "breached")
            # The read model is written by the sync activity.
            rec = await _wait_db(engine, lambda db: db.get(DisputeRecord, d.dispute_id))
            assert rec.category == "reimbursement" and rec.contract_id is None
        finally:
            await handle.terminate("test over")


async def _wait_for_description(handle, timeout: float = 10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        desc = await handle.describe()
        if desc.typed_search_attributes and len(desc.typed_search_attributes) >= 4:
            return desc
        if loop.time() > deadline:
            raise AssertionError(f"search attributes not set: {desc.typed_search_attributes}")
        await asyncio.sleep(0.1)


async def _wait_db(engine, fetch, timeout: float = 10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        with Session(engine) as db:
            value = fetch(db)
            if value:
                return value
        if loop.time() > deadline:
            raise AssertionError("database row not written")
        await asyncio.sleep(0.1)


async def test_alerts_at_thresholds_breach_escalation_then_mediation_for_no_answer(env, tmp_path):
    async with dispute_worker(env.client, tmp_path) as (queue, engine):
        now = await env.get_current_time()
        d = _dispute(now, config=DisputeConfig(alert_thresholds=[0.75, 0.9]))
        handle = await _start(env, queue, d)
        try:
            st = await _wait_for(handle, lambda s: "clock_answer" in _kinds(s))
            ack, answer = st.clocks
            assert st.sla_status is SlaState.ON_TRACK

            # 80 % of the acknowledgement delay: one alert to the handler, clock at risk.
            await sleep_until(env, ack.started_at + (ack.due_at - ack.started_at) * 0.8)
            st = await _wait_for(handle, lambda s: s.clocks[0].alerts_fired == [0.75])
            assert st.clocks[0].state is SlaState.AT_RISK and st.sla_status is SlaState.AT_RISK
            assert not st.escalated

            # Past the deadline: the 90 % alert, the breach, and the escalation to the supervisor.
            await sleep_until(env, ack.due_at)
            st = await _wait_for(handle, lambda s: s.escalated)
            assert st.clocks[0].alerts_fired == [0.75, 0.9]
            assert st.clocks[0].state is SlaState.BREACHED and st.sla_status is SlaState.BREACHED
            assert st.clocks[1].state is SlaState.ON_TRACK
            kinds = _kinds(st)
            assert kinds.count("alert_threshold") == 2 and "alert_breach" in kinds and "alert_escalation" in kinds
            alerts = await _wait_db(engine, lambda db: _alerts(db, d.dispute_id, 4))
            assert [(a.kind, a.clock, a.threshold) for a in alerts] == [
                ("threshold", "acknowledgement", 0.75),
                ("threshold", "acknowledgement", 0.9),
                ("breach", "acknowledgement", None),
                ("escalation", None, None),
            ]
            assert alerts[-1].recipient == "superviseur-reclamations"

            # Mediation is refused while the answer is not yet late...
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await handle.execute_update(DisputeWorkflow.refer_to_mediation, MediationReferral())
            assert "only after a rejection" in str(err.value.cause)

            # ...and allowed once the 60-day / 2-month deadline passed with no answer.
            await sleep_until(env, answer.due_at)
            st = await _wait_for(handle, lambda s: s.clocks[1].breach_recorded)
            assert st.clocks[1].state is SlaState.BREACHED
            assert "alert_escalation" in _kinds(st)
            alerts = await _wait_db(engine, lambda db: _alerts(db, d.dispute_id, 8))
            assert sum(1 for a in alerts if a.kind == "escalation") == 2
            st = await handle.execute_update(DisputeWorkflow.refer_to_mediation, MediationReferral(note="sans réponse"))
            assert st.stage is DisputeStage.IN_MEDIATION
            if os.environ.get("SAVE_DISPUTE_HISTORIES"):
                (HISTORIES / "dispute_alerts_breach.json").write_text((await handle.fetch_history()).to_json())
        finally:
            await handle.terminate("test over")


def _alerts(db, dispute_id: str, at_least: int):
    rows = db.exec(select(DisputeAlert).where(DisputeAlert.dispute_id == dispute_id).order_by(DisputeAlert.id)).all()
    return rows if len(rows) >= at_least else None


async def test_rejection_letter_contest_mediation_outcome_follow_up_and_satisfaction(env, tmp_path):
    async with dispute_worker(env.client, tmp_path) as (queue, engine):
        now = await env.get_current_time()
        d = _dispute(now)
        handle = await _start(env, queue, d)
        st = await handle.execute_update(DisputeWorkflow.acknowledge, Acknowledge())
        assert st.stage is DisputeStage.ACKNOWLEDGED and st.clocks[0].state is SlaState.MET
        st = await handle.execute_update(DisputeWorkflow.assign, Handler(name="Julie Martin"))
        assert st.stage is DisputeStage.IN_PROGRESS and st.handler.name == "Julie Martin"
        st = await handle.execute_update(
            DisputeWorkflow.respond,
            Decision(outcome=Outcome.REJECTED, text="Le tarif appliqué est conforme au tableau de garanties."),
        )
        assert st.stage is DisputeStage.ANSWERED and st.clocks[1].state is SlaState.MET
        answer = st.letters[-1]
        assert answer.kind == "dispute_answer"
        text = "".join(page.extract_text() for page in PdfReader(answer.path).pages)
        assert "Médiation de la Mutualité" in text and d.dispute_id in text  # the rejection names the mediator

        st = await handle.execute_update(
            DisputeWorkflow.customer_reply, CustomerReply(accepts=False, text="Je conteste")
        )
        assert st.stage is DisputeStage.CONTESTED and st.letters[-1].kind == "mediation_referral"

        st = await handle.execute_update(DisputeWorkflow.refer_to_mediation, MediationReferral())
        assert st.stage is DisputeStage.IN_MEDIATION
        mediation = env.client.get_workflow_handle(f"mediation-{d.dispute_id}")
        med = await mediation.query("status")
        assert datetime.fromisoformat(med["opinion_due_at"]) == st.mediation.opinion_due_at and not med["overdue"]
        # R612-5: 90 days from the complete file, due at 24:00 Paris on the last day.
        assert st.mediation.opinion_due_at.astimezone(PARIS).time().hour == 0
        assert (st.mediation.opinion_due_at - st.mediation.file_complete_at) <= timedelta(days=91)

        # The mediator is late: the child records it and alerts.
        await sleep_until(env, st.mediation.opinion_due_at)
        await _wait_db(
            engine, lambda db: db.exec(select(DisputeAlert).where(DisputeAlert.kind == "mediation_overdue")).first()
        )

        st = await handle.execute_update(
            DisputeWorkflow.mediation_outcome,
            MediationOutcome(
                opinion=MediatorOpinion.FAVOURABLE, text="Complément de 180 € dû.", amount=Decimal("180.00")
            ),
        )
        assert st.stage is DisputeStage.MEDIATION_COMPLETED
        assert st.mediation.outcome.opinion is MediatorOpinion.FAVOURABLE
        assert st.mediation.follow_up_id == f"{d.dispute_id}-mediation"
        assert "(hors délai)" in st.history[[h.kind for h in st.history].index("mediation_outcome")].detail
        follow_up = await _wait_db(engine, lambda db: db.get(DisputeFollowUp, f"{d.dispute_id}-mediation"))
        assert follow_up.amount == Decimal("180.00") and follow_up.status == "open"

        st = await handle.execute_update(DisputeWorkflow.close, Close(reason="avis du médiateur appliqué"))
        assert st.stage is DisputeStage.CLOSED
        st = await handle.execute_update(DisputeWorkflow.satisfaction, Satisfaction(score=4, comment="Réglé"))
        result: DisputeStatus = await handle.result()
        assert result.satisfaction.score == 4 and result.stage is DisputeStage.CLOSED
        sat = await _wait_db(engine, lambda db: db.get(DisputeSatisfaction, d.dispute_id))
        assert sat.score == 4 and sat.category == "reimbursement" and sat.handling_days > 90
        rec = await _wait_db(engine, lambda db: (r := db.get(DisputeRecord, d.dispute_id)) and r.satisfaction and r)
        assert rec.stage == "closed" and rec.outcome == "rejected" and rec.mediation_opinion == "favourable"
        with Session(engine) as db:
            events = db.exec(select(CaseEvent).where(CaseEvent.workflow_id == f"dispute-{d.dispute_id}")).all()
        assert len(events) == len(result.history)  # the audit trail holds every entry once

        if os.environ.get("SAVE_DISPUTE_HISTORIES"):
            history = await handle.fetch_history()
            (HISTORIES / "dispute_mediation.json").write_text(history.to_json())
            child = await mediation.fetch_history()
            (HISTORIES / "dispute_mediation_child.json").write_text(child.to_json())


async def test_premium_dispute_holds_and_resumes_the_recovery_case(env, tmp_path):
    async with dispute_worker(env.client, tmp_path, extra_workflows=[RecordingRecovery]) as (queue, engine):
        recovery = await env.client.start_workflow(
            RecordingRecovery.run, "CT-778", id="unpaid-CT-778", task_queue=queue
        )
        now = await env.get_current_time()
        # No category given: triage reads the text and classifies it as a premium dispute.
        d = _dispute(
            now,
            contract_id="CT-778",
            category=None,
            subject="Mise en demeure pour des cotisations déjà payées",
            description="Vous me réclamez trois mois de cotisations alors que le prélèvement a bien été fait.",
        )
        handle = await _start(env, queue, d)
        st = await _wait_for(handle, lambda s: "recovery_held" in _kinds(s))
        assert st.category is DisputeCategory.PREMIUMS and st.category_source == "triage"
        assert st.triage.top_terms and st.triage.top_terms[0].weight > 0
        assert st.recovery.held and not st.recovery.resumed
        assert (await recovery.query(RecordingRecovery.signals))[0].startswith(f"hold:réclamation {d.dispute_id}")

        await handle.execute_update(
            DisputeWorkflow.respond, Decision(outcome=Outcome.UPHELD, text="Le prélèvement a bien été reçu.")
        )
        st = await handle.execute_update(DisputeWorkflow.customer_reply, CustomerReply(accepts=True))
        assert st.stage is DisputeStage.CLOSED
        st = await _wait_for(handle, lambda s: "recovery_resumed" in _kinds(s))
        assert st.recovery.resumed
        signals = await recovery.query(RecordingRecovery.signals)
        assert signals[-1] == "resume" and len(signals) == 2
        await recovery.signal(RecordingRecovery.finish)
        await handle.terminate("test over")


async def test_dispute_without_recovery_case_or_other_category(env, tmp_path):
    async with dispute_worker(env.client, tmp_path, extra_workflows=[RecordingRecovery]) as (queue, engine):
        now = await env.get_current_time()
        # Premium dispute but no recovery case open: recorded, the dispute goes on.
        d1 = _dispute(now, contract_id="CT-NONE", category=DisputeCategory.PREMIUMS)
        h1 = await _start(env, queue, d1)
        st = await _wait_for(h1, lambda s: "recovery_not_found" in _kinds(s))
        assert not st.recovery.held and "aucun dossier" in st.recovery.note
        st = await h1.execute_update(DisputeWorkflow.acknowledge, Acknowledge())
        assert st.stage is DisputeStage.ACKNOWLEDGED

        # A reimbursement dispute does not hold recovery; correcting it to premiums does,
        # and the correction is stored for retraining.
        recovery = await env.client.start_workflow(RecordingRecovery.run, "CT-9", id="unpaid-CT-9", task_queue=queue)
        d2 = _dispute(now, contract_id="CT-9", category=None)
        h2 = await _start(env, queue, d2)
        st = await _wait_for(h2, lambda s: "triaged" in _kinds(s))
        assert st.category is DisputeCategory.REIMBURSEMENT and st.recovery is None
        st = await h2.execute_update(
            DisputeWorkflow.correct_category,
            CategoryCorrection(category=DisputeCategory.PREMIUMS, by="j.martin", reason="porte sur l'échéancier"),
        )
        assert st.category is DisputeCategory.PREMIUMS and st.category_source == "operator"
        assert st.recovery.held
        assert len(await recovery.query(RecordingRecovery.signals)) == 1
        row = await _wait_db(engine, lambda db: db.exec(select(TriageCorrectionRecord)).first())
        assert (row.predicted, row.corrected, row.by) == ("reimbursement", "premiums", "j.martin")
        assert "couronne" in row.text
        for h in (h1, h2, recovery):
            await h.terminate("test over")


async def _rejected(handle, update, arg) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(update, arg)
    return str(err.value.cause)


async def test_bad_messages_are_rejected_with_a_clear_reason(env, tmp_path):
    async with dispute_worker(env.client, tmp_path) as (queue, engine):
        now = await env.get_current_time()
        d = _dispute(now)
        handle = await _start(env, queue, d)
        assert "still open" in await _rejected(handle, DisputeWorkflow.satisfaction, Satisfaction(score=3))
        assert "no answer awaiting" in await _rejected(
            handle, DisputeWorkflow.customer_reply, CustomerReply(accepts=True)
        )
        assert "no mediation in progress" in await _rejected(
            handle, DisputeWorkflow.mediation_outcome, MediationOutcome(opinion=MediatorOpinion.FAVOURABLE, text="x")
        )
        assert "not referred to the ethics committee" in await _rejected(
            handle, DisputeWorkflow.ethics_opinion, EthicsOpinion(text="avis")
        )
        assert "already reimbursement" in await _rejected(
            handle, DisputeWorkflow.correct_category, CategoryCorrection(category=DisputeCategory.REIMBURSEMENT)
        )
        # Payloads that do not match the message model (sent by name, as the UI or another
        # system would): rejected with the field and the reason, the workflow unharmed.
        for name, payload, reason in [
            ("satisfaction", {"score": 9}, "score"),
            ("respond", {"outcome": "maybe", "text": "?"}, "outcome"),
            ("respond", {"outcome": "rejected", "text": "Non.", "amount": "-5"}, "amount"),
            ("assign", {}, "name"),
        ]:
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await handle.execute_update(name, payload)
            assert reason in str(err.value.cause), (name, str(err.value.cause))

        await handle.execute_update(DisputeWorkflow.acknowledge, Acknowledge())
        assert "already acknowledged" in await _rejected(handle, DisputeWorkflow.acknowledge, Acknowledge())
        await handle.execute_update(
            DisputeWorkflow.respond, Decision(outcome=Outcome.UPHELD, text="Accordé", amount=Decimal("50"))
        )
        assert "has not replied" in await _rejected(
            handle, DisputeWorkflow.respond, Decision(outcome=Outcome.REJECTED, text="Non")
        )
        assert "only after a rejection" in await _rejected(
            handle, DisputeWorkflow.refer_to_mediation, MediationReferral()
        )
        await handle.execute_update(DisputeWorkflow.close, Close())
        assert "the dispute is closed" in await _rejected(handle, DisputeWorkflow.assign, Handler(name="X"))
        assert "the dispute is closed" in await _rejected(handle, DisputeWorkflow.close, Close())
        await handle.execute_update(DisputeWorkflow.satisfaction, Satisfaction(score=5))
        result = await handle.result()
        # Rejected updates left no trace in the history.
        assert [h.kind for h in result.history].count("answered") == 1
        assert result.satisfaction.score == 5
        if os.environ.get("SAVE_DISPUTE_HISTORIES"):
            (HISTORIES / "dispute_rejected_messages.json").write_text((await handle.fetch_history()).to_json())


async def test_sensitive_case_goes_to_the_ethics_committee_before_the_answer(env, tmp_path):
    async with dispute_worker(env.client, tmp_path) as (queue, engine):
        now = await env.get_current_time()
        d = _dispute(now, sensitive=True)
        handle = await _start(env, queue, d)
        st = await _wait_for(handle, lambda s: s.ethics is not None and "alert_ethics_committee" in _kinds(s))
        alert = await _wait_db(
            engine, lambda db: db.exec(select(DisputeAlert).where(DisputeAlert.kind == "ethics_committee")).first()
        )
        assert alert.recipient == "comite-ethique" and "sensible" in alert.message
        reason = await _rejected(handle, DisputeWorkflow.respond, Decision(outcome=Outcome.UPHELD, text="ok"))
        assert "ethics committee's opinion is pending" in reason
        await handle.execute_update(DisputeWorkflow.ethics_opinion, EthicsOpinion(text="Geste commercial recommandé"))
        st = await handle.execute_update(
            DisputeWorkflow.respond,
            Decision(outcome=Outcome.PARTIALLY_UPHELD, text="Geste de 80 €", amount=Decimal("80")),
        )
        assert st.stage is DisputeStage.ANSWERED and st.ethics.opinion == "Geste commercial recommandé"
        # Manual escalation to a supervisor is recorded too.
        st = await handle.execute_update(DisputeWorkflow.escalate, Escalation(reason="membre très mécontent"))
        assert st.escalated
        assert "already referred" in await _rejected(
            handle, DisputeWorkflow.escalate, Escalation(reason="x", level=EscalationLevel.ETHICS_COMMITTEE)
        )
        await handle.terminate("test over")


async def test_information_request_pauses_the_answer_clock_only_when_configured(env, tmp_path):
    async with dispute_worker(env.client, tmp_path) as (queue, engine):
        now = await env.get_current_time()
        paused = await _start(env, queue, _dispute(now, config=DisputeConfig(pause_while_awaiting_information=True)))
        running = await _start(env, queue, _dispute(now))
        for handle in (paused, running):
            await handle.execute_update(DisputeWorkflow.acknowledge, Acknowledge())
            st = await handle.execute_update(
                DisputeWorkflow.request_information, InformationRequest(text="Merci de joindre la facture détaillée")
            )
            assert st.stage is DisputeStage.AWAITING_INFORMATION
        st = await paused.query(DisputeWorkflow.status)
        assert st.clocks[1].state is SlaState.PAUSED
        base_due = st.clocks[1].base_due_at
        await env.sleep(timedelta(days=5))
        for handle in (paused, running):
            st = await handle.execute_update(
                DisputeWorkflow.customer_message, CustomerMessage(text="Voici la facture", attachments=["facture.pdf"])
            )
            assert st.stage is DisputeStage.ACKNOWLEDGED
        paused_st = await paused.query(DisputeWorkflow.status)
        running_st = await running.query(DisputeWorkflow.status)
        # The member took 5 days: the answer deadline moves by that time only when pausing.
        assert timedelta(days=5) <= paused_st.clocks[1].due_at - base_due < timedelta(days=5, minutes=5)
        assert running_st.clocks[1].due_at == running_st.clocks[1].base_due_at
        assert paused_st.clocks[1].state is SlaState.ON_TRACK
        for handle in (paused, running):
            await handle.terminate("test over")


async def test_mediation_window_and_hold_rule_are_configurable(env, tmp_path):
    async with dispute_worker(env.client, tmp_path, extra_workflows=[RecordingRecovery]) as (queue, engine):
        now = await env.get_current_time()
        # L612-2: mediation at most one year after the written complaint.
        old = await _start(env, queue, _dispute(now - timedelta(days=400)))
        st = await _wait_for(old, lambda s: s.clocks[1].breach_recorded)
        assert st.escalated and st.sla_status is SlaState.BREACHED
        reason = await _rejected(old, DisputeWorkflow.refer_to_mediation, MediationReferral())
        assert "within one year" in reason

        # A portfolio may decide that premium disputes do not hold recovery.
        recovery = await env.client.start_workflow(RecordingRecovery.run, "CT-12", id="unpaid-CT-12", task_queue=queue)
        d = _dispute(
            now,
            contract_id="CT-12",
            category=DisputeCategory.PREMIUMS,
            config=DisputeConfig(hold_recovery_categories=[]),
        )
        handle = await _start(env, queue, d)
        await handle.execute_update(DisputeWorkflow.close, Close(reason="retrait"))
        st = await _wait_for(handle, lambda s: s.closed_at is not None)
        assert st.recovery is None and await recovery.query(RecordingRecovery.signals) == []
        for h in (old, handle, recovery):
            await h.terminate("test over")


@pytest.mark.devserver
async def test_long_dispute_continues_as_new_with_its_whole_state(dev_env, tmp_path):
    # The real dev server: the time-skipping server can stall an update or a query that
    # lands on the run at the moment it continues as new (seen in CI-like runs).
    env = dev_env
    async with dispute_worker(env.client, tmp_path) as (queue, engine):
        now = await env.get_current_time()
        d = _dispute(now, config=DisputeConfig(continue_as_new_after_events=50, satisfaction_window_days=0))
        started = await _start(env, queue, d)
        first_run = started.first_execution_run_id
        # Talk to the latest run (as the API does), not to the first run's handle.
        handle = env.client.get_workflow_handle(started.id, result_type=DisputeStatus)
        await handle.execute_update(DisputeWorkflow.acknowledge, Acknowledge())
        await handle.execute_update(DisputeWorkflow.assign, Handler(name="Julie Martin"))
        # A chatty member: many messages until the history is long enough. (The run
        # change is watched with describe, a server call: the time-skipping server can
        # stall a query that lands on the run while it continues as new.)
        for n in range(12):
            await handle.execute_update(DisputeWorkflow.customer_message, CustomerMessage(text=f"Message {n}"))
        for _ in range(100):
            desc = await env.client.get_workflow_handle(handle.id).describe()
            if desc.run_id != first_run:
                break
            await asyncio.sleep(0.1)
        assert desc.run_id != first_run, "the dispute never continued as new"
        await asyncio.sleep(0.5)
        st = await _wait_for(handle, lambda s: "continued_as_new" in _kinds(s))
        # Everything was carried: stage, handler, clocks, history (once), category.
        assert st.stage is DisputeStage.IN_PROGRESS and st.handler.name == "Julie Martin"
        assert st.clocks[0].state is SlaState.MET and st.clocks[1].completed_at is None
        kinds = _kinds(st)
        assert kinds.count("received") == 1 and kinds.count("acknowledged") == 1
        st = await handle.execute_update(DisputeWorkflow.respond, Decision(outcome=Outcome.UPHELD, text="Accordé"))
        st = await handle.execute_update(DisputeWorkflow.customer_reply, CustomerReply(accepts=True))
        result = await handle.result()
        assert result.stage is DisputeStage.CLOSED and result.clocks[1].state is SlaState.MET
        with Session(engine) as db:
            events = db.exec(select(CaseEvent).where(CaseEvent.workflow_id == handle.id)).all()
        # The audit trail holds every entry exactly once across both runs.
        assert len(events) == len(result.history)
        assert len({e.run_id for e in events}) == 2
        if os.environ.get("SAVE_DISPUTE_HISTORIES"):
            first = env.client.get_workflow_handle(handle.id, run_id=first_run)
            (HISTORIES / "dispute_continue_as_new.json").write_text((await first.fetch_history()).to_json())
            (HISTORIES / "dispute_continued_run.json").write_text((await handle.fetch_history()).to_json())

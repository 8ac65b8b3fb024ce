"""MediationWorkflow — médiation de la consommation, a child of DisputeWorkflow.

Code de la consommation L612-2 / R612-5: after a written complaint that was rejected or
not answered within 2 months, the member may refer to the mediator; the mediator's
opinion is due within 90 days of the complete file. The opinion is not binding: the
insurer records it and, when it accepts an opinion favourable to the member, a follow-up
action (payment, regularisation) is created.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models import search_attributes as sa
    from models.calendar import end_of_day
    from models.disputes import (
        AlertInput,
        DisputeStage,
        FollowUpInput,
        HistoryEntry,
        MediationInput,
        MediationOutcome,
        MediationResult,
        MediationStatus,
        MediatorOpinion,
        SlaState,
        mediation_last_day,
    )

_ACTIVITY = dict(
    start_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=2)),
)


@workflow.defn(name="MediationWorkflow")
class MediationWorkflow:
    @workflow.init
    def __init__(self, inp: MediationInput) -> None:
        self._input = inp
        last_day = mediation_last_day(inp.file_complete_at, inp.opinion_days)
        self._status = MediationStatus(
            dispute_id=inp.dispute_id,
            mediator=inp.mediator,
            file_complete_at=inp.file_complete_at,
            opinion_due_at=end_of_day(last_day),
        )

    @workflow.run
    async def run(self, inp: MediationInput) -> MediationResult:
        s = self._status
        self._record(
            "file_complete",
            f"dossier complet transmis à {s.mediator.name}; avis attendu avant le "
            f"{s.opinion_due_at.date().isoformat()} 00:00 (R612-5, {inp.opinion_days} jours)",
        )
        self._publish(SlaState.ON_TRACK)
        try:
            await workflow.wait_condition(
                lambda: s.outcome is not None,
                timeout=max(s.opinion_due_at - workflow.now(), timedelta(seconds=1)),
            )
        except TimeoutError:
            # The mediator is late: the dispute stays open, the handler is told.
            s.overdue = True
            self._record("opinion_overdue", "l'avis du médiateur n'est pas arrivé dans les 90 jours")
            self._publish(SlaState.BREACHED)
            await workflow.execute_activity(
                "dispute_alert",
                AlertInput(
                    dispute_id=inp.dispute_id,
                    workflow_id=workflow.info().workflow_id,
                    kind="mediation_overdue",
                    due_at=s.opinion_due_at,
                    recipient=inp.mediator.name,
                    message=f"Avis du médiateur attendu le {s.opinion_due_at.isoformat()} non reçu",
                    at=workflow.now(),
                    dedup_key=f"{inp.dispute_id}:mediation:overdue",
                ),
                **_ACTIVITY,
            )
            await workflow.wait_condition(lambda: s.outcome is not None)

        outcome = s.outcome
        assert outcome is not None
        received_at = workflow.now()
        if outcome.opinion is not MediatorOpinion.UNFAVOURABLE and outcome.insurer_accepts:
            s.follow_up_id = f"{inp.dispute_id}-mediation"
            action = "Appliquer l'avis du médiateur"
            if outcome.amount is not None:
                action += f" : verser {outcome.amount} EUR au membre"
            await workflow.execute_activity(
                "dispute_follow_up",
                FollowUpInput(
                    dispute_id=inp.dispute_id,
                    follow_up_id=s.follow_up_id,
                    action=action,
                    amount=outcome.amount,
                    at=received_at,
                ),
                **_ACTIVITY,
            )
            self._record("follow_up_created", action)
        elif outcome.opinion is not MediatorOpinion.UNFAVOURABLE:
            self._record("opinion_not_applied", "l'assureur n'applique pas l'avis (non contraignant)")
        self._publish(SlaState.MET if not s.overdue else SlaState.BREACHED, stage="mediation_completed")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return MediationResult(outcome=outcome, received_at=received_at, overdue=s.overdue, follow_up_id=s.follow_up_id)

    @workflow.signal
    def record_outcome(self, outcome: MediationOutcome) -> None:
        if self._status.outcome is not None:
            self._record("outcome_ignored", "un avis est déjà enregistré")
            return
        self._status.outcome = outcome
        self._record("opinion_received", f"{outcome.opinion.value}: {outcome.text[:200]}")

    @workflow.query
    def status(self) -> MediationStatus:
        return self._status

    # ------------------------------------------------------------------ helpers
    def _record(self, kind: str, detail: str = "") -> None:
        self._status.history.append(HistoryEntry(at=workflow.now(), kind=kind, detail=detail))

    def _publish(self, sla: SlaState, stage: str = DisputeStage.IN_MEDIATION.value) -> None:
        s = self._status
        workflow.upsert_search_attributes(
            [
                sa.DISPUTE_STAGE.value_set(stage),
                sa.DISPUTE_CATEGORY.value_set(self._input.category.value),
                sa.SLA_STATUS.value_set(sla.value),
                sa.SLA_DUE_AT.value_set(s.opinion_due_at),
            ]
        )
        workflow.set_current_details(
            f"**Médiation** — réclamation `{s.dispute_id}` ({s.mediator.name})\n\n"
            f"- Avis attendu avant : {s.opinion_due_at.isoformat()}\n"
            f"- SLA : {sla.value}\n"
            f"- Avis : {s.outcome.opinion.value if s.outcome else 'en attente'}"
        )

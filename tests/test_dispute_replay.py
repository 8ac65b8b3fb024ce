"""Replay saved DisputeWorkflow / MediationWorkflow histories: a code change that breaks
determinism fails here. Regenerate (after an intended, versioned change) with
``SAVE_DISPUTE_HISTORIES=1 pytest tests/test_dispute_workflow.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import sandbox_runner
from workflows.dispute import DisputeWorkflow
from workflows.mediation import MediationWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("dispute*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay_saved_dispute_history(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=[DisputeWorkflow, MediationWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_histories_are_present() -> None:
    names = {p.stem for p in HISTORIES}
    assert {
        "dispute_mediation",
        "dispute_mediation_child",
        "dispute_alerts_breach",
        "dispute_rejected_messages",
    } <= names

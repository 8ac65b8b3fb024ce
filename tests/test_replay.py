"""Replay saved histories: a change that breaks workflow determinism fails here.

Histories are recorded by ``tests/histories/generate_*.py``; every ``*.json`` there is
replayed against the current workflow code with the worker's own sandbox settings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import sandbox_runner
from workflows.registry import ALL_WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay_saved_history(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter,
                        workflow_runner=sandbox_runner())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_histories_are_present():
    names = {p.stem for p in HISTORIES}
    assert {"unpaid_litigation", "unpaid_reinstated", "unpaid_bounce_hold_signals", "unpaid_vie"} <= names

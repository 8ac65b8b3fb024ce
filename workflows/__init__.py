"""Workflow definitions only: deterministic code, no I/O."""

from workflows.unpaid import UnpaidPremiumWorkflow

ALL_WORKFLOWS: list[type] = [UnpaidPremiumWorkflow]

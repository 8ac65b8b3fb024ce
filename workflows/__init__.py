"""Workflow definitions only: deterministic code, no I/O."""

from workflows.dispute import DisputeWorkflow
from workflows.mediation import MediationWorkflow
from workflows.reconcile import LreReconciliationWorkflow
from workflows.unpaid import UnpaidPremiumWorkflow

ALL_WORKFLOWS: list[type] = [UnpaidPremiumWorkflow, DisputeWorkflow, MediationWorkflow, LreReconciliationWorkflow]

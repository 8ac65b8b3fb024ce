"""Every workflow the worker registers.

Kept out of ``workflows/__init__.py`` on purpose: the sandbox re-imports a workflow's module
and its parent packages for every workflow run, so the package ``__init__`` stays empty and
a recovery case does not pay for compiling the disputes workflows.
"""

from workflows.dispute import DisputeWorkflow
from workflows.mediation import MediationWorkflow
from workflows.reconcile import LreReconciliationWorkflow
from workflows.unpaid import UnpaidPremiumWorkflow

ALL_WORKFLOWS: list[type] = [UnpaidPremiumWorkflow, DisputeWorkflow, MediationWorkflow, LreReconciliationWorkflow]

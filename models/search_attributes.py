"""Custom search attributes (DESIGN.md): operators filter on them in the Temporal UI."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

CONTRACT_ID = SearchAttributeKey.for_keyword("ContractId")
PORTFOLIO = SearchAttributeKey.for_keyword("Portfolio")
RECOVERY_STAGE = SearchAttributeKey.for_keyword("RecoveryStage")
UNPAID_KIND = SearchAttributeKey.for_keyword("UnpaidKind")
AMOUNT_DUE = SearchAttributeKey.for_float("AmountDue")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")
DISPUTE_STAGE = SearchAttributeKey.for_keyword("DisputeStage")
DISPUTE_CATEGORY = SearchAttributeKey.for_keyword("DisputeCategory")
SLA_STATUS = SearchAttributeKey.for_keyword("SlaStatus")
SLA_DUE_AT = SearchAttributeKey.for_datetime("SlaDueAt")

ALL = [
    CONTRACT_ID, PORTFOLIO, RECOVERY_STAGE, UNPAID_KIND, AMOUNT_DUE, NEXT_DEADLINE,
    DISPUTE_STAGE, DISPUTE_CATEGORY, SLA_STATUS, SLA_DUE_AT,
]

_CLI_TYPES = {"KEYWORD": "Keyword", "DOUBLE": "Double", "DATETIME": "Datetime"}


def dev_server_flags() -> list[str]:
    """``--search-attribute Name=Type`` arguments for ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={_CLI_TYPES[key.indexed_value_type.name]}"]
    return flags

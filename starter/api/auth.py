"""Bearer API keys with roles (settings ``API_KEYS="key:role,key:role"``).

Roles: ``backoffice`` opens cases and posts payments, ``operator`` holds / resumes /
cancels and handles disputes, ``manager`` reads, ``admin`` does everything.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

ROLES = ("backoffice", "operator", "manager", "admin")
_bearer = HTTPBearer(auto_error=False)


def parse_api_keys(spec: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, role = item.rpartition(":")
        if not sep or not key or role not in ROLES:
            raise ValueError(f"invalid API key entry {item!r}: expected KEY:ROLE with ROLE in {ROLES}")
        keys[key] = role
    return keys


def current_role(
    request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> str:
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing bearer API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    keys: dict[str, str] = request.app.state.api_keys
    for key, role in keys.items():
        if hmac.compare_digest(key.encode(), creds.credentials.encode()):
            return role
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="unknown API key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def require_role(*allowed: str) -> Callable[..., str]:
    """Dependency: the caller's role must be one of ``allowed`` (``admin`` always passes)."""

    def _check(role: str = Depends(current_role)) -> str:
        if role != "admin" and role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"role '{role}' may not do this; required: {' or '.join(allowed)}",
            )
        return role

    return _check

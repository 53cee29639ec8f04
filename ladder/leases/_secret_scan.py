"""Secrets never land in the lease ledger: find a password in a lease's text or undo payload.

Private to ``ladder.leases``, which calls :func:`check_no_secrets` before it records a lease.
"""

from __future__ import annotations

from typing import Any

from ladder.errors import LeaseError
from ladder.secrets import holds_password

__all__ = ["check_no_secrets"]

_SECRET_KEYS = {"password", "passwd", "pgpassword", "private_key", "api_key", "secret_key"}


def _find_secret(value: Any, path: str) -> str | None:
    """The path of the first password in ``value``, or None."""
    if isinstance(value, str):
        return path if holds_password(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            secret_key = str(key).lower() in _SECRET_KEYS
            if secret_key and not isinstance(item, dict) and item not in (None, ""):
                return sub
            found = _find_secret(item, sub)
            if found:
                return found
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _find_secret(item, f"{path}[{i}]")
            if found:
                return found
    return None


def check_no_secrets(kind: str, target: str, description: str, undo: dict[str, Any]) -> None:
    """Refuse (LeaseError) a lease whose text or undo payload holds a password."""
    for name, value in (("target", target), ("description", description)):
        if _find_secret(value, name):
            raise LeaseError(
                f"lease {kind}: {name} holds a password; secrets never go in the ledger"
            )
    where = _find_secret(undo, "")
    if where:
        raise LeaseError(
            f"lease {kind}: undo payload at '{where}' holds a password; secrets never go in the "
            'ledger: name a secret reference ({"env": NAME} or {"secret": NAME}) instead'
        )

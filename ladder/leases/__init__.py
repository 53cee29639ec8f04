"""The lease ledger: every change to a shared environment, recorded before it is made.

A lease says *what* was changed (``kind``, ``target``), *who* changed it (``owner``: a flow run id
or ``cli:USER``), *how to undo it* (``undo``: a JSON payload for the kind's undo function) and
*when it expires*. Its ``state`` moves ``pending`` (recorded, change not yet confirmed applied) →
``active`` → ``reverted``; a failing undo leaves ``revert_failed`` with the error text, and can be
retried. The flow that took a lease reverts it when it ends, fails or is cancelled; the ``janitor``
flow reverts whatever has expired, so a killed worker leaves nothing behind past the TTL.

Intended use, in a rung::

    with leased(ledger, "postgres_database", f"{db} on replica", owner=run_id,
                ttl=timedelta(hours=2), undo={"server": {"env": "DEBUG_DSN"}, "dbname": db}):
        create_database(dsn, db)          # the body applies the change, and nothing else
    ...                                   # the lease is active; the flow reverts it at its end

Undo functions are registered per kind with :func:`register_undo`; they take the payload, return
an outcome string and must be idempotent (undoing what is already undone is a success). Secrets
never land in the ledger: a payload holding a password (in a DSN, a URL or a ``password`` key) is
refused; name a secret reference (``{"env": NAME}`` / ``{"secret": NAME}``) instead.

The ledger is a SQLite file (``leases.db`` in the state directory, ``~/.local/state/ladder`` unless
``LADDER_HOME`` says otherwise: the same for every command whatever its current directory) or any
SQLAlchemy URL in ``LADDER_LEDGER_URL``, e.g. ``postgresql+psycopg://ladder@db/ladder``. Both are
read by :mod:`ladder.settings`.
"""

from __future__ import annotations

import builtins
import importlib
import pkgutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError

from ladder.errors import LeaseError
from ladder.leases._model import OPEN_STATES, Lease, LeaseState, lease_from_row
from ladder.leases._secret_scan import check_no_secrets
from ladder.leases._store import (
    TABLE_NAME,
    UtcDateTime,
    default_url,
    leases_table,
    make_engine,
    metadata,
)
from ladder.secrets import scrub

__all__ = [
    "OPEN_STATES", "TABLE_NAME", "Lease", "LeaseLedger", "LeaseState",
    "UndoFn", "UtcDateTime", "check_no_secrets", "default_url", "leased", "leases_table",
    "make_engine",
    "register_undo", "undo_kinds",
]  # fmt: skip

#: Packages whose modules define undo kinds next to the change they undo (a connector, a rung).
#: A process that never imported them (the janitor) imports them all before it gives up on a kind.
UNDO_PACKAGES: tuple[str, ...] = ("ladder.connectors", "ladder.rungs", "ladder.tunnel")


# --- undo registry ---------------------------------------------------------------------------

UndoFn = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class _UndoKind:
    fn: UndoFn
    payload_model: type[BaseModel] | None


_UNDO: dict[str, _UndoKind] = {}


def register_undo(
    kind: str, *, payload: type[BaseModel] | None = None
) -> Callable[[UndoFn], UndoFn]:
    """Register the undo function of ``kind``. ``payload`` (a pydantic model) checks the JSON
    payload when a lease is taken, so a lease that could never be reverted is never recorded.

    The function gets the payload dict and returns an outcome string; it must be idempotent.
    """

    def decorate(fn: UndoFn) -> UndoFn:
        known = _UNDO.get(kind)
        if known is not None and _qualname(known.fn) != _qualname(fn):
            raise LeaseError(f"lease kind '{kind}' is already registered by {_qualname(known.fn)}")
        _UNDO[kind] = _UndoKind(fn, payload)
        return fn

    return decorate


def undo_kinds() -> list[str]:
    """The lease kinds this process can revert."""
    return sorted(_UNDO)


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def _discover_undo_kinds() -> None:
    """Import every module of :data:`UNDO_PACKAGES`, so each undo kind registers itself."""
    for package in UNDO_PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            importlib.import_module(info.name)


def _undo_kind(kind: str) -> _UndoKind:
    if kind not in _UNDO:
        _discover_undo_kinds()
    if kind not in _UNDO:
        raise LeaseError(
            f"unknown lease kind '{kind}' (known: {', '.join(undo_kinds()) or 'none'}); "
            "define it with @register_undo in a module under "
            f"{' or '.join(UNDO_PACKAGES)}"
        )
    return _UNDO[kind]


# --- rows and errors ---------------------------------------------------------------------


def _problems(exc: ValidationError) -> str:
    """Pydantic's errors without the input values (which could hold a secret)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}"
        for err in exc.errors(include_input=False, include_url=False)
    )


def _describe_failure(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return f"bad undo payload: {_problems(exc)}"
    return scrub(f"{type(exc).__name__}: {exc}")  # kept in the ledger: never a password


class LeaseLedger:
    """The ledger of leases in one database (see the module docstring for the URL).

    Opening it creates the table if it is missing. Each call is its own short transaction, so a
    flow and the janitor can share the ledger; ``close()`` releases the connections.
    """

    def __init__(self, url: str | None = None) -> None:
        self.engine = make_engine(url or default_url())
        self.url = self.engine.url.render_as_string(hide_password=True)
        # in one write transaction, so two processes opening a new ledger don't both create it
        with self._errors("open"), self.engine.begin() as conn:
            metadata.create_all(conn, checkfirst=True)

    def __repr__(self) -> str:
        return f"LeaseLedger({self.url!r})"

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (sa.exc.SQLAlchemyError, ValueError) as exc:  # ValueError: a URL's bad port
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise LeaseError(f"lease ledger {self.url}: cannot {doing}: {scrub(reason)}") from None

    def take(
        self,
        kind: str,
        target: str,
        *,
        owner: str,
        ttl: timedelta,
        undo: dict[str, Any],
        description: str = "",
    ) -> Lease:
        """Record a change about to be made (state ``pending``), committed before returning."""
        spec = _undo_kind(kind)
        if ttl <= timedelta(0):
            raise LeaseError(f"lease {kind} on {target}: ttl must be positive, got {ttl}")
        if not owner:
            raise LeaseError(f"lease {kind} on {target}: owner is required")
        check_no_secrets(kind, target, description, undo)
        if spec.payload_model is not None:
            try:
                spec.payload_model.model_validate(undo)
            except ValidationError as exc:
                raise LeaseError(
                    f"lease {kind} on {target}: bad undo payload: {_problems(exc)}"
                ) from None
        now = datetime.now(UTC)
        values = {
            "id": uuid.uuid4().hex[:12],
            "kind": kind,
            "target": target,
            "description": description,
            "owner": owner,
            "created_at": now,
            "expires_at": now + ttl,
            "state": LeaseState.PENDING.value,
            "undo": undo,
            "outcome": None,
            "reverted_at": None,
            "attempts": 0,
        }
        with self._errors(f"record lease {kind} on {target}"), self.engine.begin() as conn:
            conn.execute(leases_table.insert().values(**values))
        return self.get(values["id"])

    def activate(self, lease_id: str) -> Lease:
        """Mark a pending lease active: its change is applied. Active stays active."""
        lease = self.get(lease_id)
        if lease.state in (LeaseState.REVERTED, LeaseState.REVERT_FAILED):
            raise LeaseError(
                f"lease {lease_id} ({lease.kind} on {lease.target}) was already {lease.state.value}"
                " before its change was confirmed: revert it again with "
                f"`ladder leases revert {lease_id}`"
            )
        self._update(lease_id, {"state": LeaseState.ACTIVE.value}, only_states=OPEN_STATES)
        return self.get(lease_id)

    def extend(self, lease_id: str, expires_at: datetime) -> Lease:
        """Move an open lease's expiry to ``expires_at`` (the engineer still needs it)."""
        lease = self.get(lease_id)
        if not lease.is_open:
            raise LeaseError(
                f"lease {lease_id} ({lease.kind} on {lease.target}) is {lease.state.value}: "
                "there is nothing left to extend"
            )
        self._update(lease_id, {"expires_at": expires_at}, only_states=OPEN_STATES)
        return self.get(lease_id)

    def revert(self, lease_id: str) -> Lease:
        """Run the undo of a lease. Reverting a reverted lease returns it unchanged; a failing
        undo records ``revert_failed`` with the error (retry by calling this again)."""
        lease = self.get(lease_id)
        if lease.state is LeaseState.REVERTED:
            return lease
        try:
            spec = _undo_kind(lease.kind)
            if spec.payload_model is not None:
                spec.payload_model.model_validate(lease.undo)
            outcome, state = spec.fn(dict(lease.undo)), LeaseState.REVERTED
        except Exception as exc:  # any connector's undo: recorded, shown, retried by the janitor
            outcome, state = _describe_failure(exc), LeaseState.REVERT_FAILED
        values: dict[str, Any] = {
            "state": state.value,
            "outcome": outcome,
            "attempts": leases_table.c.attempts + 1,
        }
        if state is LeaseState.REVERTED:
            values["reverted_at"] = datetime.now(UTC)
        # Another process may have reverted it meanwhile: the first recorded revert wins.
        self._update(lease_id, values, only_states=OPEN_STATES)
        return self.get(lease_id)

    def revert_owner(self, owner: str) -> builtins.list[Lease]:
        """Revert every open lease of ``owner`` (newest first); returns them as they ended."""
        return [self.revert(lease.id) for lease in self._open(owner=owner)]

    def revert_expired(self, now: datetime | None = None) -> builtins.list[Lease]:
        """Revert every open lease that expired at ``now`` (default: now), newest first."""
        return [self.revert(lease.id) for lease in self._open(expired_at=now or datetime.now(UTC))]

    def get(self, lease_id: str) -> Lease:
        """The lease with ``lease_id``; LeaseError when there is none."""
        with self._errors(f"read lease {lease_id}"), self.engine.connect() as conn:
            row = conn.execute(sa.select(leases_table).where(leases_table.c.id == lease_id)).first()
        if row is None:
            raise LeaseError(f"no lease with id '{lease_id}' in {self.url}")
        return lease_from_row(row)

    def _open(
        self, *, owner: str | None = None, expired_at: datetime | None = None
    ) -> builtins.list[Lease]:
        query = sa.select(leases_table).where(
            leases_table.c.state.in_([s.value for s in OPEN_STATES])
        )
        if owner is not None:
            query = query.where(leases_table.c.owner == owner)
        if expired_at is not None:
            query = query.where(leases_table.c.expires_at <= expired_at)
        query = query.order_by(leases_table.c.created_at.desc(), leases_table.c.id)
        with self._errors("list leases"), self.engine.connect() as conn:
            return [lease_from_row(r) for r in conn.execute(query)]

    def _update(
        self, lease_id: str, values: dict[str, Any], *, only_states: tuple[LeaseState, ...]
    ) -> None:
        stmt = (
            leases_table.update()
            .where(leases_table.c.id == lease_id)
            .where(leases_table.c.state.in_([s.value for s in only_states]))
            .values(**values)
        )
        with self._errors(f"update lease {lease_id}"), self.engine.begin() as conn:
            conn.execute(stmt)

    def list(
        self, state: LeaseState | str | None = None, owner: str | None = None
    ) -> builtins.list[Lease]:
        """Leases, oldest first, optionally only those in ``state`` and/or of ``owner``."""
        query = sa.select(leases_table)
        if state is not None:
            try:
                state = LeaseState(state)
            except ValueError:
                choices = ", ".join(s.value for s in LeaseState)
                raise LeaseError(f"unknown lease state '{state}' (one of: {choices})") from None
            query = query.where(leases_table.c.state == state.value)
        if owner is not None:
            query = query.where(leases_table.c.owner == owner)
        query = query.order_by(leases_table.c.created_at, leases_table.c.id)
        with self._errors("list leases"), self.engine.connect() as conn:
            return [lease_from_row(r) for r in conn.execute(query)]


@contextmanager
def leased(
    ledger: LeaseLedger,
    kind: str,
    target: str,
    owner: str,
    ttl: timedelta,
    undo: dict[str, Any],
    description: str = "",
) -> Iterator[Lease]:
    """Take a lease, let the body apply the change, then mark the lease active.

    Put only the change in the body. If the body raises, the lease is reverted at once (the undo
    is idempotent, so a half-applied change is fine) and the error propagates. A clean exit does
    *not* revert: the change stays until the flow's end-of-run ``revert_owner`` or the janitor.
    """
    lease = ledger.take(kind, target, owner=owner, ttl=ttl, undo=undo, description=description)
    try:
        yield lease
    except BaseException:
        ledger.revert(lease.id)
        raise
    ledger.activate(lease.id)


# --- built-in undo kinds -------------------------------------------------------------------

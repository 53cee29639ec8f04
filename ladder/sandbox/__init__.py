"""The embedded sandbox: a throwaway shop to run the whole ladder against.

``up`` builds, in a directory of its own, a PostgreSQL cluster (``DIR/pg``) holding a seeded
``shop_production`` database and an empty ``shop_staging``, Rails logs with an incident in them
(``DIR/logs``), and ``DIR/sandbox.json``, written last, which says what is where. ``up`` on an
existing sandbox only starts it; ``down`` stops the cluster and removes what ``up`` made.

Its parts: ``cluster`` (the throwaway PostgreSQL server), ``shop_schema`` (tables, keys, indexes),
``shop_data`` (the rows, built column-wise) and ``seed`` (loading them, planting the defect),
``traffic`` (the shop's requests and the incident in them) and ``railslogs`` (writing them as
Rails and lograge logs). Production code never imports any of it (``tests/unit/test_layout.py``).
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ladder.connectors.postgres import connect, create_database
from ladder.errors import PostgresError, SandboxError
from ladder.incident import Incident
from ladder.replica.guard import create_marked
from ladder.sandbox import nginx, remote, shop
from ladder.sandbox.cluster import Cluster
from ladder.sandbox.limits import DEFAULT_REQUESTS, MIN_REQUESTS, MIN_USERS
from ladder.settings import settings

if TYPE_CHECKING:
    from ladder.sandbox.traffic import IncidentSpec, LogUser

PRODUCTION_DB = "shop_production"
STAGING_DB = "shop_staging"
STATE_FILE = "sandbox.json"
KEY_FILE = "pseudonym.key"
INCIDENT_ID = "sandbox-checkout-500"
_LOG_SAMPLE = 400  # customers who appear in the logs besides the incident's

Progress = Callable[[str], None]


@dataclass
class SandboxInfo:
    """A sandbox as ``sandbox.json`` describes it, and whether its cluster is running."""

    directory: Path
    production_dsn: str
    staging_dsn: str
    log_files: list[Path]
    incident: Incident
    users: int
    running: bool
    sizes: dict[str, int] = field(default_factory=dict)
    slow_user_id: int | None = None
    shop: dict[str, object] | None = None  # the staging app on Puma, while it runs
    front: dict[str, object] | None = None  # nginx in front of the shop, while it runs

    @property
    def pseudonym_key(self) -> str:
        """The sandbox's own pseudonymization key (``DIR/pseudonym.key``, made on first use)."""
        path = self.directory / KEY_FILE
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()


def default_dir() -> Path:
    """``LADDER_SANDBOX_DIR``, else ``sandbox`` in the state directory (see ladder.settings)."""
    return settings().sandbox_dir


def up(
    directory: Path | None = None,
    users: int = 5000,
    requests: int | None = None,
    seed: int = 7,
    progress: Progress | None = None,
) -> SandboxInfo:
    """Create the sandbox in ``directory``; when one is there already, start it and return it.

    An existing sandbox is never reseeded (``users``/``requests``/``seed`` are then ignored).
    """
    directory = _resolve(directory)
    say = progress or (lambda _msg: None)
    if users < MIN_USERS:
        raise ValueError(f"the sandbox needs at least {MIN_USERS} users, got {users}")
    if requests is not None and requests < MIN_REQUESTS:
        raise ValueError(f"the sandbox needs at least {MIN_REQUESTS} requests, got {requests}")
    if (directory / STATE_FILE).exists():
        say(f"sandbox already in {directory}: starting it")
        return load(directory)
    _remove_parts(directory)  # leftovers of an `up` that died half-way
    cluster = Cluster(directory / "pg")
    try:
        return _build(directory, cluster, users, requests or DEFAULT_REQUESTS, seed, say)
    except BaseException:
        _remove_parts(directory)
        raise


def down(directory: Path | None = None) -> bool:
    """Stop the sandbox's cluster and remove what ``up`` made. True when something was there."""
    directory = _resolve(directory)
    found = (directory / STATE_FILE).exists() or (directory / "pg").exists()
    _remove_parts(directory)
    if found and directory.exists() and not any(directory.iterdir()):
        directory.rmdir()
    return found


def status(directory: Path | None = None) -> SandboxInfo | None:
    """The sandbox in ``directory`` (not started), or None when there is none."""
    directory = _resolve(directory)
    if not (directory / STATE_FILE).exists():
        return None
    return _read(directory)


def load(directory: Path | None = None) -> SandboxInfo:
    """The sandbox in ``directory``, started if it was stopped; SandboxError when there is none."""
    directory = _resolve(directory)
    if not (directory / STATE_FILE).exists():
        raise SandboxError(f"no sandbox in {directory}: run `ladder sandbox up`")
    cluster = Cluster(directory / "pg")
    if not cluster.exists():
        raise SandboxError(
            f"the sandbox in {directory} has lost its database files:"
            " run `ladder sandbox down` and `up` again"
        )
    cluster.load_state()
    if not cluster.running():
        try:
            cluster.start()
        except PostgresError:
            cluster.port = None  # the old port may be taken now: try a fresh one once
            cluster.start()
        state = json.loads((directory / STATE_FILE).read_text())
        state.update(_dsns(cluster))
        _write_state(directory, state)
    remote.ensure(directory, cluster, say=lambda _msg: None)
    return _read(directory)


def environment_parts(info: SandboxInfo) -> dict[str, object]:
    """The sandbox's ``ssh`` and ``tunnel_db`` for rung 3, what this machine lacks, ``staging``
    with its app (the shop on Puma) for rung 4, the Flipper tables its app reads for rung 5, and
    ``load_balancer`` (nginx in front of the shop) for rung 6."""
    from ladder.connectors.flipper_config import sandbox_flipper

    parts = remote.environment_parts(info.directory, PRODUCTION_DB)
    parts["flipper"] = sandbox_flipper(info.production_dsn, info.shop)
    staging = shop.staging_config(info.shop, info.staging_dsn)
    if staging is not None:
        parts["staging"] = staging
    if info.front:  # nginx in front of the shop, for rung 6
        parts["load_balancer"] = nginx.load_balancer(info.front)
    return parts


def _build(
    directory: Path, cluster: Cluster, users: int, requests: int, seed: int, say: Progress
) -> SandboxInfo:
    now = datetime.now(UTC).replace(microsecond=0)
    say(f"creating a PostgreSQL cluster in {cluster.directory}")
    cluster.init()
    cluster.start()
    dsns = _dsns(cluster)
    create_database(cluster.dsn(), PRODUCTION_DB)
    create_marked(cluster.dsn(), STAGING_DB, "the sandbox's staging, empty until refresh-staging")
    say(f"seeding {PRODUCTION_DB} with {users:,} users")
    from ladder.sandbox.railslogs import write_logs
    from ladder.sandbox.seed import seed_shop
    from ladder.sandbox.traffic import IncidentSpec

    result = seed_shop(dsns["production_dsn"], users, seed, say, now=now)
    spec = IncidentSpec.ending_at(
        now - timedelta(minutes=3), result.incident_user_ids, result.slow_user_id
    )
    sample = _log_users(dsns["production_dsn"], users, spec, seed)
    say(f"writing {requests:,} requests of Rails logs")
    logs = write_logs(directory / "logs", sample, spec, requests, seed)
    incident = Incident(
        id=INCIDENT_ID,
        title="POST /checkout returns 500 for some customers (NoMethodError in Payment#capture!)",
        source="sandbox",
        started_at=spec.started_at,
        ended_at=spec.ended_at,
        service="shop-web",
        labels={"environment": "production"},
        params={"endpoint": "CheckoutController#create", "user_ids": list(spec.failing_user_ids)},
    )
    state = {
        "version": 1,
        "created_at": now.isoformat(),
        **dsns,
        "log_files": [str(p) for p in logs],
        "incident": incident.model_dump(mode="json"),
        "users": users,
        "requests": requests,
        "seed": seed,
        "sizes": result.counts,
        "slow_user_id": result.slow_user_id,
        "seed_seconds": round(result.seconds, 2),
    }
    _write_state(directory, state)
    remote.ensure(directory, cluster, say)
    say(f"sandbox ready in {directory}")
    return _read(directory)


def _log_users(dsn: str, users: int, spec: IncidentSpec, seed: int) -> list[LogUser]:
    """The incident's customers and a sample of others, as the database holds them."""
    import numpy as np

    from ladder.sandbox.traffic import LogUser

    rng = np.random.default_rng(seed + 1)
    ids = {*spec.failing_user_ids, spec.slow_user_id}
    ids.update(int(i) for i in rng.choice(users, min(users, _LOG_SAMPLE), replace=False) + 1)
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT id, email, first_name, last_name, phone, host(last_sign_in_ip),"
            " preferences #>> '{shipping,address}' FROM users WHERE id = ANY(%s) ORDER BY id",
            [sorted(ids)],
        ).fetchall()
    return [LogUser(*row) for row in rows]


def _dsns(cluster: Cluster) -> dict[str, object]:
    return {
        "port": cluster.port,
        "production_dsn": cluster.dsn(PRODUCTION_DB),
        "staging_dsn": cluster.dsn(STAGING_DB),
    }


def _read(directory: Path) -> SandboxInfo:
    try:
        state = json.loads((directory / STATE_FILE).read_text())
        return SandboxInfo(
            directory=directory,
            production_dsn=state["production_dsn"],
            staging_dsn=state["staging_dsn"],
            log_files=[Path(p) for p in state["log_files"]],
            incident=Incident.model_validate(state["incident"]),
            users=int(state["users"]),
            running=Cluster(directory / "pg").running(),
            sizes=dict(state.get("sizes", {})),
            slow_user_id=state.get("slow_user_id"),
            shop=shop.running(directory),
            front=nginx.running(directory),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SandboxError(
            f"{directory / STATE_FILE} is damaged ({exc}): run `ladder sandbox down` and `up` again"
        ) from exc


def _write_state(directory: Path, state: dict[str, object]) -> None:
    tmp = directory / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(directory / STATE_FILE)


def _remove_parts(directory: Path) -> None:
    """Stop the cluster and delete the parts ``up`` makes; other files in ``directory`` stay."""
    remote.stop(directory)
    shop.stop(directory)
    cluster = Cluster(directory / "pg")
    if cluster.exists():
        cluster.stop()
    for name in ("pg", "logs", remote.SSH_DIR, remote.STANDBY_DIR):
        shutil.rmtree(directory / name, ignore_errors=True)
    for name in (STATE_FILE, STATE_FILE + ".tmp", KEY_FILE):
        (directory / name).unlink(missing_ok=True)


def _resolve(directory: Path | None) -> Path:
    return Path(directory).absolute() if directory is not None else default_dir().absolute()

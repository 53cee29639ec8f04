"""Is the database at the end of a tunnel read-only? Asked of the server, before anyone gets a DSN.

Read-only means either the server is a standby (``pg_is_in_recovery()``: nothing can write to it)
or the role can only read: not a superuser, ``default_transaction_read_only`` on for it, and no
INSERT, UPDATE, DELETE or TRUNCATE privilege on any table outside the system schemas. The check
connects *without* Ladder's own read-only option, so it sees the role as the server sets it up.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ladder.connectors.postgres import connect
from ladder.errors import NotReadOnlyError
from ladder.secrets import describe_server

READ_ONLY_OPTION = "-c default_transaction_read_only=on"

_WRITABLE_TABLES = sql.SQL("""
    SELECT n.nspname || '.' || c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
      AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
    ORDER BY 1
""")


def read_only_dsn(dsn: str) -> str:
    """``dsn`` with ``options=-c default_transaction_read_only=on`` added to its options, as a
    URL: no quotes inside, so ``psql '<it>'`` works pasted into a shell.

    >>> read_only_dsn("host=127.0.0.1 port=5433 user=ro dbname=shop")
    'postgresql://ro@127.0.0.1:5433/shop?options=-c%20default_transaction_read_only%3Don'
    """
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    params["options"] = " ".join(filter(None, [params.get("options"), READ_ONLY_OPTION]))
    user, host = params.pop("user", ""), params.pop("host", "127.0.0.1")
    port, dbname = params.pop("port", "5432"), params.pop("dbname", "")
    who = f"{quote(user, safe='')}@" if user else ""
    return f"postgresql://{who}{host}:{port}/{quote(dbname, safe='')}?" + urlencode(
        params, quote_via=quote
    )


def check_read_only(dsn: str) -> str:
    """How the server at ``dsn`` is read-only, in a few words for the report; raises
    :class:`~ladder.errors.NotReadOnlyError` naming what is writable when it is not."""
    with connect(dsn, autocommit=True) as conn:
        in_recovery, read_only, superuser, role = conn.execute(
            "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'),"
            " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), current_user"
        ).fetchone()  # type: ignore[misc]
        if in_recovery:
            return "the server is a standby (pg_is_in_recovery() is true)"
        writable = [r[0] for r in conn.execute(_WRITABLE_TABLES)]
    problems = []
    if superuser:
        problems.append(f"role {role} is a superuser")
    if read_only != "on":
        problems.append(f"role {role} has default_transaction_read_only={read_only}")
    if writable:
        more = f" and {len(writable) - 5} more" if len(writable) > 5 else ""
        problems.append(
            f"role {role} may write to {len(writable)} table(s) ({', '.join(writable[:5])}{more})"
        )
    if problems:
        raise NotReadOnlyError(
            f"refusing to hand out {describe_server(dsn)} through the tunnel: it is writable — "
            f"the server is not a standby (pg_is_in_recovery() is false) and {'; '.join(problems)}."
            " Point the environment's tunnel_db at a hot standby, or use a role with SELECT "
            "grants only and default_transaction_read_only=on"
        )
    return (
        f"role {role} can only read (default_transaction_read_only=on, no write privilege on "
        "any table)"
    )

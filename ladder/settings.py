"""Ladder's own settings: every ``LADDER_*`` environment variable is read here and nowhere else.

:func:`settings` returns a fresh :class:`LadderSettings` each call (reading the environment is
cheap, and tests change it between calls). Nothing in Ladder writes to ``os.environ``.

Where state lives
    Ladder's state (the lease ledger, the incident reports, the sandbox) lives under one state
    directory, ``LADDER_HOME``, by default ``$XDG_STATE_HOME/ladder`` or
    ``~/.local/state/ladder``. The default belongs to the *user*, not to the current directory:
    a flow run, the janitor and ``ladder leases list`` started from different directories (or
    by a worker whose working directory is a temporary checkout) must see the same ledger, or
    a lease taken in one is invisible to the others and never reverted. A project-local
    ``.ladder`` would tie the state to wherever a command happened to start; the XDG state
    directory is where the XDG base-directory spec puts exactly this kind of data (history,
    logs, state that should survive a restart but is not worth backing up). Set ``LADDER_HOME``
    (or ``LADDER_LEDGER_URL`` for a shared PostgreSQL ledger) to put it elsewhere. Every path is
    made absolute when it is read, so a relative ``LADDER_HOME`` is pinned at that moment.

Secrets that runbooks and policies *name* (``{env: LADDER_PSEUDONYM_KEY}``, the
``{env: LADDER_TARGET_DSN}`` a replica lease's undo may hold) are secret references, resolved by
:mod:`ladder.secrets` like any other variable a user names; they are not settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ladder.errors import ConfigError

__all__ = ["LadderSettings", "default_home", "settings"]


def _xdg(variable: str, fallback: str) -> Path:
    """An XDG base directory: ``$variable`` when it is an absolute path (the spec ignores a
    relative one), else ``~/fallback``."""
    value = os.environ.get(variable, "")
    return Path(value) if value and Path(value).is_absolute() else Path.home() / fallback


def default_home() -> Path:
    """``$XDG_STATE_HOME/ladder``, else ``~/.local/state/ladder``."""
    return _xdg("XDG_STATE_HOME", ".local/state") / "ladder"


def _absolute(path: Path) -> Path:
    return path.expanduser().absolute()


class LadderSettings(BaseSettings):
    """Ladder's settings, from ``LADDER_<FIELD>`` environment variables (empty means unset)."""

    model_config = SettingsConfigDict(
        env_prefix="LADDER_", env_ignore_empty=True, extra="ignore", frozen=True
    )

    home: Path = Field(
        default_factory=default_home,  # made absolute by _defaults
        description="state directory: ledger, reports, sandbox "
        "(default $XDG_STATE_HOME/ladder or ~/.local/state/ladder)",
    )
    ledger_url: SecretStr = Field(
        description="SQLAlchemy URL of the lease ledger (default: sqlite:///HOME/leases.db)",
    )
    sandbox_dir: Path = Field(
        description="where `ladder sandbox up` and `ladder demo` build the sandbox "
        "(default HOME/sandbox)",
    )
    cache_dir: Path = Field(
        description="cache of Faker-drawn pools, safe to delete "
        "(default $XDG_CACHE_HOME/ladder or ~/.cache/ladder)",
    )
    debug: bool = Field(
        False, description="an unexpected error (a bug) prints its traceback, not just one line"
    )
    checkpoint_poll_seconds: int = Field(
        5, ge=1, description="how often a waiting checkpoint looks for an answer"
    )
    source_dsn: SecretStr | None = Field(
        None, description="source DSN for `ladder replica create` and `ladder policy`"
    )
    target_dsn: SecretStr | None = Field(None, description="target DSN for `ladder replica create`")
    # the intake's default secrets (runbooks/intake.yaml may name others); unset = source disabled
    sentry_secret: SecretStr | None = Field(
        None, description="client secret of the Sentry integration (`/hooks/sentry`)"
    )
    datadog_token: SecretStr | None = Field(
        None, description="token Datadog's webhook sends (`/hooks/datadog`)"
    )
    alertmanager_token: SecretStr | None = Field(
        None, description="token Alertmanager's webhook sends (`/hooks/alertmanager`)"
    )
    pagerduty_secret: SecretStr | None = Field(
        None, description="signing secret of the PagerDuty v3 webhook (`/hooks/pagerduty`)"
    )
    webhook_secret: SecretStr | None = Field(
        None, description="Standard Webhooks secret, whsec_... (`/hooks/generic`)"
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        """Fill in what derives from ``home``; make every path absolute."""
        data = dict(data)
        home = _absolute(Path(data.get("home") or default_home()))
        data["home"] = home
        data.setdefault("ledger_url", f"sqlite:///{home / 'leases.db'}")
        data["sandbox_dir"] = _absolute(Path(data.get("sandbox_dir") or home / "sandbox"))
        cache = data.get("cache_dir") or _xdg("XDG_CACHE_HOME", ".cache") / "ladder"
        data["cache_dir"] = _absolute(Path(cache))
        return data

    @property
    def reports_dir(self) -> Path:
        """Where incident reports are written: ``HOME/reports``."""
        return self.home / "reports"

    def dsn(self, which: Literal["source", "target"], given: str | None, flag: str) -> str:
        """``given`` (a command-line option), else ``LADDER_SOURCE_DSN`` / ``LADDER_TARGET_DSN``,
        checked; a ConfigError names the option (and the variable), never the DSN."""
        from ladder.secrets import parse_dsn

        if given:
            return parse_dsn(given, flag)
        variable = f"LADDER_{which.upper()}_DSN"
        value = self.source_dsn if which == "source" else self.target_dsn
        if value is None:
            raise ConfigError(f"{flag} is required (or set {variable})")
        return parse_dsn(value.get_secret_value(), f"{flag} (from {variable})")


def settings() -> LadderSettings:
    """Ladder's settings as the environment says now."""
    return LadderSettings()

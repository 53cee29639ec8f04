"""The intake's configuration (``runbooks/intake.yaml``): runbooks to route to, secrets per source.

Example::

    deployment: escalate-incident/escalate-incident   # the deployment alerts start
    runbooks:                       # tried in order: the first whose match rules accept wins
      - example-production.yaml
    sources:                        # a secret reference per source, or a list while rotating
      sentry: {secret: sentry-client-secret}
      datadog: {env: DD_WEBHOOK_TOKEN}

A source the file does not name reads its default variable (``LADDER_SENTRY_SECRET``,
``LADDER_DATADOG_TOKEN``, ``LADDER_ALERTMANAGER_TOKEN``, ``LADDER_PAGERDUTY_SECRET``,
``LADDER_WEBHOOK_SECRET``, through :mod:`ladder.settings`). A source with no secret is disabled
(404): never open.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ladder.config import Runbook
from ladder.errors import ConfigError, SecretError
from ladder.incident import Incident
from ladder.secrets import SecretRef, resolve
from ladder.settings import LadderSettings, settings
from ladder.yamlfile import load_yaml, parse_model

__all__ = ["SOURCES", "IntakeConfig", "IntakeFile", "Route", "load_intake"]

#: endpoint name -> the setting holding its default secret
SOURCES = {
    "sentry": "sentry_secret",
    "datadog": "datadog_token",
    "alertmanager": "alertmanager_token",
    "pagerduty": "pagerduty_secret",
    "generic": "webhook_secret",
}


class IntakeFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployment: str = Field(
        "escalate-incident/escalate-incident", pattern=r"^[^/\s]+/[^/\s]+$",
        description="FLOW/DEPLOYMENT that alerts start",
    )  # fmt: skip
    runbooks: list[str] = Field(default_factory=list, description="runbook files, in order")
    sources: dict[str, SecretRef | list[SecretRef]] = Field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """A runbook the intake routes to: its file (as the flow will open it) and its rules."""

    path: str
    runbook: Runbook

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.runbook.dedup_window_minutes)


@dataclass(frozen=True)
class IntakeConfig:
    deployment: str
    routes: list[Route]
    secrets: dict[str, list[SecretStr]]  # enabled sources only

    def route(self, incident: Incident) -> Route | None:
        """The first runbook whose match rules accept ``incident``."""
        for r in self.routes:
            if any(rule.matches(incident) for rule in r.runbook.match):
                return r
        return None


def _check_standard_secret(value: str, where: str) -> None:
    try:
        base64.b64decode(value.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where}: the Standard Webhooks secret is not whsec_ + base64") from None


def _secrets(file: IntakeFile, env: LadderSettings, where: str) -> dict[str, list[SecretStr]]:
    unknown = set(file.sources) - set(SOURCES)
    if unknown:
        raise ConfigError(
            f"{where}: sources: unknown source {sorted(unknown)[0]!r}; the sources are "
            + ", ".join(SOURCES)
        )
    out: dict[str, list[SecretStr]] = {}
    for source, setting in SOURCES.items():
        named = file.sources.get(source)
        if named is None:
            default = getattr(env, setting)
            values = [default] if default is not None else []
        else:
            refs = named if isinstance(named, list) else [named]
            try:
                values = [SecretStr(resolve(ref)) for ref in refs]
            except SecretError as exc:
                raise ConfigError(f"{where}: sources.{source}: {exc}") from None
        if source == "generic":
            for v in values:
                _check_standard_secret(v.get_secret_value(), f"{where}: sources.generic")
        if values:
            out[source] = values
    return out


def load_intake(path: str | Path | None) -> IntakeConfig:
    """The intake configuration at ``path`` (None: no file, every default), runbooks parsed."""
    env = settings()
    if path is None:
        return IntakeConfig(
            "escalate-incident/escalate-incident", [], _secrets(IntakeFile(), env, "defaults")
        )
    doc = load_yaml(path)
    file = parse_model(doc, IntakeFile)
    routes = []
    for i, name in enumerate(file.runbooks):
        rb_path = Path(name) if Path(name).is_absolute() else doc.path.parent / name
        try:
            runbook = parse_model(load_yaml(rb_path), Runbook)
        except ConfigError as exc:
            raise ConfigError(
                [f"{doc.where(('runbooks', i))}: runbooks[{i}]: {f}" for f in exc.findings]
            ) from None
        routes.append(Route(str(rb_path.absolute()), runbook))
    return IntakeConfig(file.deployment, routes, _secrets(file, env, str(doc.path)))

"""Runbooks and environments: pydantic models loaded from YAML with ``file:line`` errors.

A **runbook** names its environment, the rungs it may climb with their settings, and the alert
rules that route incidents to it. An **environment** describes hosts and services. Secrets are
references (``{env: NAME}`` / ``{secret: NAME}``), never values. Policies live in
:mod:`ladder.sanitize.policy`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    create_model,
    field_validator,
)

from ladder.config_hosts import KubernetesConfig, LoadBalancerConfig, SSHConfig
from ladder.connectors.flipper_config import FlipperConfig
from ladder.connectors.log_source import LogSource
from ladder.errors import ConfigError
from ladder.incident import Incident, Source
from ladder.rungs import RungName, RungSettings, ladder, rung_names
from ladder.secrets import BlockRef, Dsn, EnvRef, NotFromYaml, SecretRef, is_set
from ladder.yamlfile import YamlDocument, load_yaml, parse_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")




# --- environment -------------------------------------------------------------------------------


class DatabaseConfig(_Strict):
    dsn: Dsn = Field(description="connection string without a password, or a secret reference")


class SentryConfig(_Strict):
    url: str = "https://sentry.io"
    organization: str
    project: str
    token: SecretRef


class DatadogConfig(_Strict):
    site: str = "datadoghq.com"
    service: str | None = None
    api_key: SecretRef
    app_key: SecretRef




class StagingConfig(_Strict):
    database: DatabaseConfig
    app_url: str | None = None
    ssh: SSHConfig | None = None
    hosts: list[str] = Field(default_factory=list, description="the only hosts rung 4 traces")
    local: bool = Field(False, description="the app runs on this machine (the sandbox)")
    puma_pidfile: str | None = Field(None, description="default: the only Puma running")
    work_dir: str = Field("/tmp", pattern=r"^/[\w./-]*$")  # noqa: S108  # a 0700 dir is made in it
    unavailable: str | None = Field(None, exclude=True)  # the sandbox's missing package


class Environment(_Strict):
    """Where production and staging live, and how Ladder may reach them."""

    name: str
    sandbox: bool = Field(False, description="the embedded sandbox fills in databases and logs")
    production_db: DatabaseConfig | None = Field(None, description="a READ-ONLY replica")
    tunnel_db: DatabaseConfig | None = Field(
        None, description="replica rung 3 tunnels to, as the SSH host sees it (default: production_db)"
    )
    logs: list[LogSource] = Field(default_factory=list)
    ssh: SSHConfig | None = None
    sentry: SentryConfig | None = None
    datadog: DatadogConfig | None = None
    flipper: FlipperConfig | None = None
    kubernetes: KubernetesConfig | None = None
    load_balancer: LoadBalancerConfig | None = None
    staging: StagingConfig | None = None
    sandbox_missing: NotFromYaml[dict[str, str]] = Field(
        default_factory=dict,
        exclude=True,
        description="parts the sandbox lacks here (e.g. ssh) and the Debian package for each",
    )
    pseudonym_key: SecretStr | None = Field(
        None,
        exclude=True,
        description="the sandbox's own pseudonymization key, filled in by bind_environment; "
        "never read from YAML (a policy names its key as a secret reference)",
    )

    @field_validator("pseudonym_key", mode="before")
    @classmethod
    def _no_key_in_yaml(cls, value: object) -> None:
        if value is not None:
            raise ValueError(
                "secrets never live in YAML: the pseudonymization key is named by the policy "
                "(key: {env: NAME} or {secret: NAME})"
            )
        return None

    @field_validator("logs")
    @classmethod
    def _relative_to_file(cls, logs: list[LogSource], info: ValidationInfo) -> list[LogSource]:
        base = Path((info.context or {}).get("path", ".")).parent
        return [
            s if s.path.is_absolute() else s.model_copy(update={"path": base / s.path})
            for s in logs
        ]


# --- runbook ----------------------------------------------------------------------------------


class _RungsBase(_Strict):
    """The rungs a runbook may climb; a rung that is absent is never climbed."""

    def named(self) -> list[str]:
        return [name for name in rung_names() if getattr(self, name) is not None]

    def settings(self, name: str) -> RungSettings | None:
        return getattr(self, name)


#: One optional field per registered rung, typed by the rung's own settings model.
RungsConfig: type[_RungsBase] = create_model(
    "RungsConfig",
    __base__=_RungsBase,
    **{r.name: (r.settings | None, None) for r in ladder()},  # type: ignore[call-overload]
)


class MatchRule(_Strict):
    """Routes an incident to this runbook when every given field matches."""

    source: Source | None = None
    title: str | None = Field(None, description="glob on the incident title, e.g. '*Checkout*'")
    service: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    def matches(self, incident: Incident) -> bool:
        from fnmatch import fnmatchcase

        return (
            (self.source is None or self.source == incident.source)
            and (self.title is None or fnmatchcase(incident.title, self.title))
            and (self.service is None or self.service == incident.service)
            and all(incident.labels.get(k) == v for k, v in self.labels.items())
        )


class Runbook(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]{0,62}$")
    description: str = ""
    environment: str = Field(description="environment file, relative to the runbook")
    until: RungName | None = Field(
        None, description="highest rung to climb (default: the last named)"
    )
    checkpoint_timeout_minutes: float = Field(
        60, gt=0, le=24 * 60, description="minutes a checkpoint waits; then it stops the run"
    )
    max_hold_minutes: int = Field(
        8 * 60,
        ge=1,
        le=7 * 24 * 60,
        description="longest TTL an engineer may ask for when extending what the run holds",
    )
    match: list[MatchRule] = Field(default_factory=list)
    dedup_window_minutes: int = Field(
        60,
        ge=0,
        le=7 * 24 * 60,
        description="alerts with the same fingerprint within this many minutes of the first "
        "start one run (the intake counts the repeats); 0 starts a run for every alert",
    )
    rungs: RungsConfig  # type: ignore[valid-type]

    def highest(self) -> str | None:
        named = self.rungs.named()
        return self.until or (named[-1] if named else None)


# --- loading ----------------------------------------------------------------------------------


@dataclass
class LoadedRunbook:
    """A runbook with its environment and the files they came from."""

    runbook: Runbook
    environment: Environment
    path: Path
    environment_path: Path
    warnings: list[str] = field(default_factory=list)

    def resolve(self, relative: str) -> Path:
        """A path written in the runbook, relative to the runbook's directory."""
        p = Path(relative)
        return p if p.is_absolute() else self.path.parent / p


def _explain_unknown_rung(exc: ConfigError) -> ConfigError:
    names = rung_names()

    def hint(m: re.Match[str]) -> str:
        close = difflib.get_close_matches(m.group(2), names, n=1)
        mean = f"did you mean {close[0]!r}? " if close else ""
        return f"{m.group(1)}: unknown rung; {mean}the rungs are: {', '.join(names)}"

    return ConfigError(
        [re.sub(r"(: rungs\.([^.: ]+)): unknown key$", hint, f) for f in exc.findings]
    )


def load_environment(path: str | Path) -> Environment:
    doc = load_yaml(path)
    return parse_model(doc, Environment)


def load_runbook(path: str | Path) -> LoadedRunbook:
    """Load a runbook and its environment; every problem in either is one line of ConfigError."""
    doc = load_yaml(path)
    try:
        runbook = parse_model(doc, Runbook)
    except ConfigError as exc:
        raise _explain_unknown_rung(exc) from None
    env_path = Path(runbook.environment)
    if not env_path.is_absolute():
        env_path = doc.path.parent / env_path
    try:
        environment = load_environment(env_path)
    except ConfigError as exc:
        line = doc.where(("environment",))
        raise ConfigError([f"{line}: environment: {f}" for f in exc.findings]) from None
    loaded = LoadedRunbook(runbook, environment, doc.path, env_path)
    findings = _semantic_findings(doc, loaded)
    errors = [f for sev, f in findings if sev == "error"]
    if errors:
        raise ConfigError(errors)
    loaded.warnings = [f for sev, f in findings if sev == "warning"]
    return loaded


def _semantic_findings(doc: YamlDocument, loaded: LoadedRunbook) -> list[tuple[str, str]]:
    """Problems a schema cannot see, from each rung's declaration: unbuilt rungs, parts of the
    environment a rung needs, its own checks; and `until` below the named rungs."""
    rb, env = loaded.runbook, loaded.environment
    out: list[tuple[str, str]] = []
    named = rb.rungs.named()
    if not named:
        out.append(("error", f"{doc.where(('rungs',))}: rungs: the runbook names no rung"))
    if rb.until and rb.until not in named:
        out.append(
            (
                "error",
                f"{doc.where(('until',))}: until: {rb.until!r} is not among the runbook's rungs ({', '.join(named)})",
            )
        )
    for r in ladder():
        settings = rb.rungs.settings(r.name)
        if settings is None:
            continue
        at = f"{doc.where(('rungs', r.name))}: rungs.{r.name}"
        if not r.built:
            out.append(
                (
                    "warning",
                    f"{at}: this rung is not built yet in this version of Ladder; "
                    "runs will report it as not_built",
                )
            )
        if not env.sandbox:
            for need in r.needs:
                if not need.present(env):
                    out.append(("error", f"{at}: the environment {env.name!r} has no {need.what}"))
        if r.check is not None:

            def where(*keys: str, _name: str = r.name) -> str:
                line = doc.where(("rungs", _name, *keys))
                return f"{line}: {'.'.join(('rungs', _name, *keys))}"

            out.extend(r.check(settings, loaded, where))
    for ref, where_ref in _secret_refs(env):
        if not is_set(ref):
            out.append(
                (
                    "warning",
                    f"{loaded.environment_path}: {where_ref}: {ref.describe()} is not set here",
                )
            )
    return out


def _secret_refs(model: BaseModel, prefix: str = "") -> list[tuple[EnvRef | BlockRef, str]]:
    found: list[tuple[EnvRef | BlockRef, str]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        where = f"{prefix}{name}"
        if isinstance(value, EnvRef):
            found.append((value, where))
        elif isinstance(value, BaseModel) and not isinstance(value, BlockRef):
            found.extend(_secret_refs(value, where + "."))
    return found


def check_runbook(path: str | Path) -> tuple[list[str], list[str]]:
    """Validate a runbook and everything it references: ``(errors, warnings)``."""
    try:
        loaded = load_runbook(path)
    except ConfigError as exc:
        return exc.findings, []
    return [], loaded.warnings


def with_sandbox(
    env: Environment,
    production_dsn: str,
    staging_dsn: str,
    log_files: list[Path],
    pseudonym_key: str | None = None,
    parts: dict[str, object] | None = None,
) -> Environment:
    """The sandbox environment with its databases, log files and pseudonymization key filled in,
    and ``parts`` (``ssh``, ``tunnel_db``, ``staging`` with its app, ``flipper``) where the YAML
    left them empty."""
    return env.model_copy(
        update={
            "production_db": env.production_db or DatabaseConfig(dsn=production_dsn),
            "staging": env.staging or StagingConfig(database=DatabaseConfig(dsn=staging_dsn)),
            "logs": env.logs or [LogSource(path=p) for p in log_files],
            "pseudonym_key": SecretStr(pseudonym_key) if pseudonym_key else env.pseudonym_key,
            **{name: part for name, part in (parts or {}).items() if not getattr(env, name)},
        }
    )


def bind_environment(
    loaded: LoadedRunbook, sandbox_dir: str | Path | None = None
) -> tuple[Environment, Incident | None]:
    """The runbook's environment ready to use, and the sandbox's incident when it is the sandbox.

    On the sandbox (the one in ``sandbox_dir``, by default ``LADDER_SANDBOX_DIR``), databases,
    log files and the pseudonymization key come from the sandbox's state. The key travels in
    the returned environment (``pseudonym_key``), never through ``os.environ``: a later
    production run in the same process must not pick it up.
    """
    env = loaded.environment
    if not env.sandbox:
        return env, None
    from ladder import sandbox

    info = sandbox.load(Path(sandbox_dir) if sandbox_dir else None)
    bound = with_sandbox(
        env, info.production_dsn, info.staging_dsn, info.log_files, info.pseudonym_key,
        sandbox.environment_parts(info),
    )  # fmt: skip
    return bound, info.incident

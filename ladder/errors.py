"""Every error Ladder raises on purpose, in one hierarchy.

    LadderError                 anything Ladder reports to a person (exit code 1 in the CLI)
    ├── ConfigError             a runbook, environment or policy file is wrong (carries findings)
    ├── SecretError             a secret reference could not be resolved (never carries the value)
    ├── ConnectorError          an outside system failed or refused
    │   ├── PostgresError       a cluster, pg_dump, psql or COPY step failed
    │   ├── LogSourceError      a log file is missing or unreadable
    │   ├── RbtraceError        rbtrace could not attach, or an eval in the target raised
    │   ├── FlipperError        Flipper's tables or flipper-api refused, or a gate read back wrong
    │   ├── RoutingError        nginx refused a route, did not reload, or a probe went astray
    │   ├── KubernetesError     the Kubernetes API refused or failed, or a debug copy never got ready
    │   ├── SSHError            an SSH host, bastion or tunnel failed or refused
    │   │   └── HostKeyError    a host key is not the one pinned in known_hosts (never retried)
    │   └── NotReadOnlyError    a database that must be read-only (the tunnel's) is writable
    ├── SandboxError            the embedded sandbox is missing or broken
    ├── SanitizeError           a value could not be sanitized
    │   └── PolicyError         a policy does not cover the data (fail closed)
    ├── ValidationGateError     sanitized data failed its great-expectations gate
    ├── LeaseError              the lease ledger could not record or revert a change
    ├── CheckpointError         an approval checkpoint was refused or timed out
    └── GuardrailError          a rung refused what it was asked (a host, a probe, a duration)

Vendor exceptions are translated at the boundary so that a person sees what Ladder was doing, not
a driver's stack: ``raise ... from exc``, or ``from None`` when the vendor exception may carry a
secret (a pydantic error holds its input, a DSN; psycopg quotes a DSN it cannot parse). A message
never holds a password (see :mod:`ladder.secrets`). The CLI prints a LadderError as one line,
``error: <message>``, and exits 1 (see :mod:`cli.errors`).
"""

from __future__ import annotations


class LadderError(Exception):
    """Base of every error Ladder reports to a person."""

    exit_code = 1


class ConfigError(LadderError):
    """A configuration file is invalid. ``findings`` holds one message per problem."""

    def __init__(self, findings: list[str] | str):
        self.findings = [findings] if isinstance(findings, str) else list(findings)
        super().__init__("\n".join(self.findings))


class SecretError(LadderError):
    """A secret reference could not be resolved."""


class ConnectorError(LadderError):
    """An outside system failed or refused."""


class PostgresError(ConnectorError):
    """A PostgreSQL cluster, client program or COPY stream failed."""


class LogSourceError(ConnectorError):
    """A log source is missing or unreadable."""


class SSHError(ConnectorError):
    """An SSH host or bastion could not be reached, refused us, or a command or tunnel failed."""


class HostKeyError(SSHError):
    """A host offered a key that the pinned ``known_hosts`` does not hold (unknown or changed)."""


class NotReadOnlyError(ConnectorError):
    """A database Ladder may only read from (a tunnel's target) would accept writes."""


class SandboxError(LadderError):
    """The embedded sandbox is missing or broken."""


class SanitizeError(LadderError):
    """A value could not be sanitized."""


class PolicyError(SanitizeError):
    """A sanitization policy does not cover the data it is applied to."""

    def __init__(self, findings: list[str] | str):
        self.findings = [findings] if isinstance(findings, str) else list(findings)
        super().__init__("\n".join(self.findings))


class ValidationGateError(LadderError):
    """Sanitized data failed its validation gate; nothing was committed."""


class LeaseError(LadderError):
    """The lease ledger could not record or revert a change."""


class CheckpointError(LadderError):
    """An approval checkpoint was refused, invalid or timed out."""


class RbtraceError(ConnectorError):
    """rbtrace could not attach to a process, or code it ran in the target raised."""


class FlipperError(ConnectorError):
    """Flipper's tables or a flipper-api endpoint failed or refused, or a gate did not read back
    as it was written."""


class GuardrailError(LadderError):
    """A rung refused what it was asked to do: a host not marked staging, a probe outside the
    allow-list, a duration above the runbook's maximum. The message is one line saying which."""


class RoutingError(ConnectorError):
    """A load balancer refused a route change, did not reload, or a probe reached the wrong app."""


class KubernetesError(ConnectorError):
    """The Kubernetes API refused or failed a request, or a debug Deployment never got ready."""

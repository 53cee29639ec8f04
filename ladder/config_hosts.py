"""The parts of an environment that say how to reach hosts: SSH, and where rung 6 puts its debug
replica (Kubernetes, or a load balancer in front of VMs).

Kept apart from :mod:`ladder.config` (which re-exports them) so that connectors can name these
models without importing the runbook machinery.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from ladder.connectors.ssh import Bastion
from ladder.secrets import NotFromYaml, SecretRef

__all__ = ["KubernetesConfig", "LoadBalancerConfig", "ReplicaProcessConfig", "SSHConfig"]

#: Environment variable names the replica may be given (a runbook's ``env``, the environment's).
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SSHConfig(_Strict):
    host: str
    user: str
    port: int = Field(22, ge=1, le=65535)
    bastion: Bastion | None = Field(None, description="jump host, user@host[:port]")
    key: SecretRef | None = Field(
        None, description="private key, as a secret reference (default: the SSH agent)"
    )
    known_hosts: str = Field(description="known_hosts file pinning the host keys")
    private_key: NotFromYaml[SecretStr | None] = Field(
        None, exclude=True, description="the sandbox's own key, filled in by bind_environment"
    )

    @field_validator("known_hosts")
    @classmethod
    def _relative_to_file(cls, value: str, info: ValidationInfo) -> str:
        path = Path(value).expanduser()
        base = Path((info.context or {}).get("path", ".")).parent
        return str(path if path.is_absolute() else base / path)


class KubernetesConfig(_Strict):
    api_url: str
    namespace: str
    deployment: str
    token: SecretRef
    gateway: str | None = Field(
        None,
        description="the app's Gateway API HTTPRoute: rung 6's route attaches to the same "
        "parents and hostnames, with header/cookie matches",
    )
    ingress: str | None = Field(
        None, description="the app's ingress-nginx Ingress, for a canary-by-header fallback"
    )
    ca_file: str | None = Field(None, description="CA bundle of the API server (default: system)")


class ReplicaProcessConfig(_Strict):
    """How rung 6 starts the debug replica of the app on a VM (nginx backend)."""

    ssh: SSHConfig | None = Field(None, description="the host the replica runs on")
    local: bool = Field(False, description="the replica runs on this machine (the sandbox)")
    command: list[str] = Field(
        min_length=1,
        description="argv that starts the app in the foreground; '{port}' is replaced by port",
    )
    cwd: str | None = Field(None, description="directory to start it in")
    port: int = Field(ge=1024, le=65535, description="port the replica listens on")
    address: str | None = Field(
        None, description="host:port nginx reaches the replica at (default: the host, port)"
    )
    env: dict[str, str] = Field(default_factory=dict, description="environment of every replica")
    work_dir: str = Field(
        "/tmp",  # noqa: S108  # on the host, a directory of 0700 is made in it
        pattern=r"^/[\w./-]*$",
        description="where the replica's pid and log files go on the host",
    )

    @field_validator("env")
    @classmethod
    def _names(cls, env: dict[str, str]) -> dict[str, str]:
        import re

        bad = [k for k in env if not re.match(ENV_NAME, k)]
        if bad:
            raise ValueError(f"not environment variable names: {', '.join(bad)}")
        return env

    def upstream(self) -> str:
        if self.address:
            return self.address
        host = self.ssh.host if self.ssh is not None else "127.0.0.1"
        return f"{host}:{self.port}"


class LoadBalancerConfig(_Strict):
    """The load balancer in front of the app, and (nginx) how rung 6 routes tagged requests.

    For nginx, the server's configuration holds a ``map`` on the header and the cookie whose
    entries are in ``map_include``; Ladder adds one block of entries per incident there, tests
    the configuration (``test_command``), and reloads nginx by SIGHUP to the master in
    ``pid_file``. See the README's rung 6 section for the nginx.conf lines.
    """

    kind: Literal["nginx", "haproxy", "gateway-api"]
    config_path: str | None = None
    admin_socket: str | None = None
    ssh: SSHConfig | None = Field(None, description="how to reach the load balancer's host")
    local: bool = Field(False, description="the load balancer runs on this machine (the sandbox)")
    url: str | None = Field(None, description="where the load balancer answers, for the probes")
    map_include: str | None = Field(
        None, pattern=r"^/[\w./-]*$", description="the nginx map include Ladder adds entries to"
    )
    pid_file: str | None = Field(None, description="nginx's master pid file (reload by SIGHUP)")
    test_command: list[str] | None = Field(
        None, description="argv that checks nginx's configuration, e.g. [nginx, -t]"
    )
    header: str = Field(
        "X-Debug-Replica", pattern=r"^[A-Za-z0-9\-]{1,64}$", description="header the map reads"
    )
    cookie: str = Field(
        "debug_replica", pattern=r"^[A-Za-z0-9_]{1,64}$", description="cookie the map reads ($cookie_NAME)"
    )
    replica: ReplicaProcessConfig | None = Field(None, description="how to start the replica")
    probe_path: str = Field("/health", pattern=r"^/[\w./\-]*$", description="path the probes GET")
    unavailable: NotFromYaml[str | None] = Field(
        None,
        exclude=True,
        description="why the sandbox has no load balancer (the missing Debian package); "
        "filled in by the sandbox, never read from YAML",
    )

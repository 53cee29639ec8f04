"""A real nginx in front of a real Puma on 127.0.0.1, for rung 6's tests: ``front``.

The Puma runs the sandbox shop without rbtrace (it answers ``/health`` without a database and
says which process served a request in ``X-Shop-Pid``); nginx proxies to it and routes tagged
requests as the README asks of a real nginx (:class:`ladder.sandbox.nginx.NginxServer`). Both
run from a temporary directory (``route-front-*``, readable by nginx's workers) on free ports and
are stopped by PID. :meth:`Front.lb` gives the environment's ``load_balancer`` for them, with a
debug replica of the same shop to start on a free port.

Skips the test when the machine has no nginx (``nginx-light``) or no Puma (``puma``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ladder.config_hosts import LoadBalancerConfig, ReplicaProcessConfig, SSHConfig
from ladder.procs import free_port
from ladder.sandbox import nginx, shop
from ladder.sandbox.nginx import NginxServer
from ladder.sandbox.shop import APP, ShopServer
from servers import not_installed

__all__ = ["Front", "front"]

NO_DATABASE = "postgresql://nobody@127.0.0.1:9/none"  # /health needs none


@dataclass
class Front:
    directory: Path
    app: ShopServer
    nginx: NginxServer

    @property
    def url(self) -> str:
        return self.nginx.url

    def lb(self, ssh: SSHConfig | None = None, **overrides: object) -> LoadBalancerConfig:
        """The load balancer as an environment names it: this machine, or over ``ssh``."""
        command = ["puma", "-b", "tcp://127.0.0.1:{port}", "-t", "1:4", "-e", "production"]
        replica = ReplicaProcessConfig(
            ssh=ssh,
            local=ssh is None,
            command=[*command, str(APP / "config.ru")],
            cwd=str(APP),
            port=free_port(),
            env={"SHOP_DATABASE_URL": NO_DATABASE, "RACK_ENV": "production"},
            work_dir=str(self.directory),
        )
        fields: dict[str, object] = {
            "kind": "nginx", "ssh": ssh, "local": ssh is None, "url": self.url,
            "map_include": str(self.nginx.include), "pid_file": str(self.nginx.pidfile),
            "test_command": self.nginx.test_command(), "replica": replica,
        }  # fmt: skip
        return LoadBalancerConfig.model_validate({**fields, **overrides})


@pytest.fixture
def front() -> Iterator[Front]:
    """The shop on Puma with nginx in front, for one test."""
    for missing in (nginx.available(), shop.available()):
        if missing:
            not_installed("nginx and Puma", missing)
    directory = Path(tempfile.mkdtemp(prefix="route-front-"))
    directory.chmod(0o755)  # nginx's workers run as another user when the tests run as root
    app = ShopServer(directory / "app", NO_DATABASE, rbtrace=False)
    server = NginxServer(directory / "nginx", "")
    try:
        app.start()
        server.app = f"127.0.0.1:{app.port}"
        server.start()
        yield Front(directory, app, server)
    finally:
        server.stop()
        app.stop()
        shutil.rmtree(directory, ignore_errors=True)

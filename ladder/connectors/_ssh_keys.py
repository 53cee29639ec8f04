"""Keys and host keys for :mod:`ladder.connectors.ssh`: a private key from a secret's text, where
it came from (for messages), the bastion spec, and the pinned-host-key policy. Private."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator

from ladder.errors import ConfigError, HostKeyError, SSHError

if TYPE_CHECKING:
    import paramiko

    from ladder.config import SSHConfig


_BASTION = re.compile(r"([^@\s]+@)?[^@:\s]+(:\d{1,5})?")


def _check_bastion(spec: str) -> str:
    if not _BASTION.fullmatch(spec):
        raise ValueError("expected user@host[:port], e.g. ladder@bastion.example.com:22")
    return spec


#: ``user@host[:port]`` as a config field: a malformed one is refused where the YAML says it.
Bastion = Annotated[str, AfterValidator(_check_bastion)]


def parse_bastion(spec: str, default_user: str) -> tuple[str, str, int]:
    """``user@host[:port]`` (user and port optional) as ``(user, host, port)``.

    >>> parse_bastion("jump@bastion.example.com:2222", "ladder")
    ('jump', 'bastion.example.com', 2222)
    >>> parse_bastion("bastion", "ladder")
    ('ladder', 'bastion', 22)
    """
    user, _, rest = spec.rpartition("@")
    host, _, port = rest.partition(":")
    if not host or (port and not port.isdigit()):
        raise ConfigError(f"ssh.bastion {spec!r}: expected user@host[:port]")
    return user or default_user, host, int(port or 22)


def load_private_key(text: str, where: str) -> paramiko.PKey:
    """A paramiko key from the text of an OpenSSH or PEM private key (RSA, ECDSA, Ed25519).

    ``where`` names the secret reference for the error; the key's text is never in a message.
    """
    import paramiko
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    data = text.strip().encode() + b"\n"
    try:
        try:
            loaded: Any = serialization.load_ssh_private_key(data, password=None)
        except ValueError:
            loaded = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SSHError(
            f"{where} does not hold an unencrypted OpenSSH or PEM private key "
            "(for a key with a passphrase, use the SSH agent)"
        ) from None
    kinds: list[tuple[type, type[paramiko.PKey]]] = [
        (rsa.RSAPrivateKey, paramiko.RSAKey),
        (ed25519.Ed25519PrivateKey, paramiko.Ed25519Key),
        (ec.EllipticCurvePrivateKey, paramiko.ECDSAKey),
    ]
    for base, key_class in kinds:
        if isinstance(loaded, base):
            try:
                return key_class.from_private_key(io.StringIO(data.decode()))
            except (paramiko.SSHException, ValueError):
                break
    raise SSHError(f"{where} holds a key type paramiko cannot use (use RSA, ECDSA or Ed25519)")


def private_key_text(config: SSHConfig, given: str | None = None) -> tuple[str | None, str]:
    """The private key to use for ``config`` and where it came from (for messages): the
    ``key`` secret reference, else ``given``, else the sandbox's own; ``(None, "the SSH agent")``
    when there is none. :class:`~ladder.errors.SecretError` when the reference is not set."""
    from ladder.secrets import resolve

    if config.key is not None:
        return resolve(config.key), f"ssh.key ({config.key.describe()})"
    if given is not None:
        return given, "the private key given to Ladder"
    if config.private_key is not None:
        return config.private_key.get_secret_value(), "the sandbox's private key"
    return None, "the SSH agent"


def reject_policy() -> paramiko.MissingHostKeyPolicy:
    import paramiko

    class _Pinned(paramiko.RejectPolicy):
        """RejectPolicy whose refusal says which host and which key fingerprint it refused."""

        def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
            raise HostKeyError(
                f"host key of {hostname} ({key.get_name()} {key.fingerprint}) is not in the "
                "pinned known_hosts: refusing to connect (check the fingerprint out of band, "
                "then add the key to the environment's known_hosts)"
            )

    return _Pinned()

"""The one shape every connector has (after ``fabric.Connection``).

Lifecycle of a :class:`Connection`:

1. ``__init__`` only stores settings: no I/O, so a connector can be built, printed and passed
   around before anything is reachable.
2. The first use opens it (``open()`` is also public, and safe to call again while open).
3. ``close()`` releases it; calling it twice, or on a connection never opened, does nothing.
   A closed connection opens again on its next use.
4. ``with`` closes on the way out, whatever happened inside.

Vendor exceptions are translated at this boundary: a subclass names them in ``vendor_errors`` and
turns one into a :mod:`ladder.errors` type in ``translate``; ``errors(doing)`` applies that to a
block. The translation is raised ``from None`` because a vendor's message and traceback may carry
what a person must not see (a DSN with its password, a token in a URL).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import ClassVar, Generic, Self, TypeVar

from ladder.errors import ConnectorError

H = TypeVar("H")


class Connection(ABC, Generic[H]):
    """A lazily opened handle ``H`` on an outside system; see the module docstring."""

    vendor_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(self) -> None:
        self._handle: H | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._handle is not None

    def open(self) -> H:
        """Open the connection unless it is open already; return the vendor handle."""
        if self._handle is not None:
            return self._handle
        with self.errors("connect"):
            handle = self._open()
        self._handle = handle
        return handle

    @property
    def handle(self) -> H:
        """The vendor handle, opened on first use."""
        return self.open()

    def close(self) -> None:
        """Release the connection. Idempotent."""
        handle, self._handle = self._handle, None
        if handle is not None:
            with self.errors("close"):
                self._close(handle)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- errors ----------------------------------------------------------------------------------

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Translate a vendor error raised in the block, saying what Ladder was ``doing``."""
        try:
            yield
        except self.vendor_errors as exc:
            raise self.translate(exc, doing) from None

    def translate(self, exc: BaseException, doing: str) -> ConnectorError:
        """The :mod:`ladder.errors` exception for vendor error ``exc``; one line, no secrets."""
        return ConnectorError(f"{doing} failed on {self.address}: {one_line(exc)}")

    @property
    def address(self) -> str:
        """Where this connects, for messages (never a credential)."""
        return type(self).__name__

    # --- for subclasses --------------------------------------------------------------------------

    @abstractmethod
    def _open(self) -> H: ...

    def _close(self, handle: H) -> None:
        """Release ``handle``; the default does nothing."""


def one_line(exc: BaseException, *, hide: str | None = None) -> str:
    """``exc``'s message on one line, with ``hide`` (a password) masked wherever it appears."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if hide:
        text = text.replace(hide, "***")
    return text

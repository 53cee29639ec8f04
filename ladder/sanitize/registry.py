"""The transformer registry: one name, one typed options model and one signature per transformer.

Every transformer works on a whole column chunk at once::

    t = get_transformer("email", {"unique": True})
    t.transform(values, key)  # pyarrow.Array | pandas.Series in, the same kind out, NULL stays NULL

Transformer classes live in :mod:`ladder.sanitize.transformers` (one module per family) and
register themselves with :func:`register`; a second class with the same name is refused.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, ValidationError

from ladder.errors import ConfigError

__all__ = [
    "Transformer",
    "TransformerOptions",
    "get_transformer",
    "names",
    "register",
    "transformer_class",
]

ColumnValues = pa.Array | pa.ChunkedArray | pd.Series


class TransformerOptions(BaseModel):
    """Options every transformer takes. ``unique``: distinct inputs must give distinct outputs
    (set by the loader for columns with a single-column unique index or primary key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    unique: bool = False


class Transformer(ABC):
    """A column transformer. Subclasses set the class attributes and implement :meth:`transform`.

    ``categories``: PostgreSQL type categories (``pg_type.typcategory``: ``S`` string, ``I``
    network, ...) the output can be loaded into; ``None`` means any. ``keyed``: the output depends
    on the key. ``replaces_pii``: a value that held PII never comes out unchanged.
    """

    name: ClassVar[str]
    Options: ClassVar[type[TransformerOptions]] = TransformerOptions
    categories: ClassVar[frozenset[str] | None] = frozenset({"S"})
    keyed: ClassVar[bool] = True
    replaces_pii: ClassVar[bool] = True

    def __init__(self, options: TransformerOptions | None = None):
        self.options = options if options is not None else self.Options()

    @abstractmethod
    def transform(self, values: ColumnValues, key: bytes) -> ColumnValues:
        """Transform a whole column chunk; returns the same kind and length, NULL stays NULL."""

    @classmethod
    def accepts(cls, column_type: str, category: str) -> bool:
        """True when the output can be loaded into a column of this type (unknown: True)."""
        return cls.categories is None or not category or category in cls.categories

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name} {self.options.model_dump(exclude_defaults=True)}>"
        )


T = TypeVar("T", bound=type[Transformer])
_REGISTRY: dict[str, type[Transformer]] = {}


def register(cls: T) -> T:
    """Class decorator adding a transformer to the registry; a duplicate name is refused."""
    name = cls.name
    other = _REGISTRY.get(name)
    if other is not None and other is not cls:
        raise ValueError(
            f"transformer name {name!r} is already registered by {other.__module__}.{other.__qualname__}"
        )
    _REGISTRY[name] = cls
    return cls


def _load() -> dict[str, type[Transformer]]:
    import ladder.sanitize.transformers  # noqa: F401 - importing registers every family

    return _REGISTRY


def names() -> tuple[str, ...]:
    """Every registered transformer name, sorted."""
    return tuple(sorted(_load()))


def transformer_class(name: str) -> type[Transformer]:
    """The class registered as ``name``; :class:`ConfigError` lists the choices when unknown."""
    registry = _load()
    try:
        return registry[name]
    except KeyError:
        raise ConfigError(
            f"unknown transformer {name!r}: choose one of {', '.join(sorted(registry))}"
        ) from None


def get_transformer(name: str, options: dict[str, Any] | None = None) -> Transformer:
    """A ready transformer; unknown names and invalid options raise :class:`ConfigError`."""
    cls = transformer_class(name)
    try:
        opts = cls.Options.model_validate(options or {})
    except ValidationError as exc:
        raise ConfigError(
            [
                f"transformer {name}: {'.'.join(map(str, e['loc'])) or '(options)'}: "
                f"{'unknown option' if e['type'] == 'extra_forbidden' else e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            ]
        ) from None
    return cls(opts)


def __getattr__(attr: str) -> Any:
    if attr == "TRANSFORMERS":  # computed on first use: the families register on import
        return names()
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")

"""Column plumbing shared by the transformers: Arrow <-> pandas, keyed hashing, encoders.

Everything here works on a whole column at once. Hashing is SipHash-2-4 (pandas' C
implementation, ~5M values/s) under a 112-bit key derived from the pseudonym key and a domain
(the transformer's name), so each transformer has its own independent keyed hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ladder.errors import SanitizeError

ColumnValues = pa.Array | pa.ChunkedArray | pd.Series
Restore = Callable[[pa.Array], ColumnValues]

_CROCKFORD = np.frombuffer(b"0123456789abcdefghjkmnpqrstvwxyz", dtype=np.uint8)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DEC = np.frombuffer(b"0123456789", dtype=np.uint8)


def to_arrow(values: ColumnValues) -> tuple[pa.Array, Restore]:
    """``values`` as one Arrow array, plus a function turning a result back into the input's kind."""
    if isinstance(values, pd.Series):
        arr = pa.array(values, from_pandas=True)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()

        def restore(out: pa.Array) -> pd.Series:
            return pd.Series(out.to_pandas().array, index=values.index, name=values.name)

        return arr, restore
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks(), lambda out: pa.chunked_array([out])
    if isinstance(values, pa.Array):
        return values, lambda out: out
    raise TypeError(
        f"a transformer takes a pyarrow Array or a pandas Series, not {type(values).__name__}"
    )


def as_text(arr: pa.Array) -> pa.Array:
    """``arr`` as a UTF-8 string array (numbers become their decimal text; NULL stays NULL)."""
    if arr.type == pa.string():
        return arr
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr.cast(pa.string())


def with_nulls(out: pa.Array, original: pa.Array) -> pa.Array:
    """``out`` with NULL wherever ``original`` is NULL."""
    if original.null_count == 0:
        return out
    return pc.if_else(original.is_valid(), out, pa.scalar(None, out.type))


def derive_key(key: bytes, domain: str) -> str:
    """A 16-character ASCII SipHash key (112 bits) for ``domain``, derived from ``key``."""
    if not isinstance(key, bytes | bytearray) or not key:
        raise SanitizeError("the pseudonym key is empty: set it in the policy's key reference")
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    digest = hashlib.blake2b(
        domain.encode(), key=bytes(key), digest_size=16, person=b"ladder-pseudonym"
    ).digest()
    return bytes(b & 0x7F for b in digest).decode("ascii")


def keyed_hash(text: pa.Array, key: bytes, domain: str) -> np.ndarray:
    """One keyed 64-bit hash per value (NULLs hash like the empty string: mask them afterwards).

    Each distinct value is hashed once (Arrow finds them in C++): a column of names or
    addresses repeats its values, and hashing goes through one Python string per value.
    """
    filled = text.fill_null("")
    if len(filled) >= _DEDUP_FROM:
        encoded = pc.dictionary_encode(filled)
        if len(encoded.dictionary) <= len(filled) * _DEDUP_BELOW:
            distinct = _hash_strings(encoded.dictionary, key, domain)
            return distinct[encoded.indices.to_numpy()]
    return _hash_strings(filled, key, domain)


_DEDUP_FROM = 1024
_DEDUP_BELOW = 0.3  # share of distinct values under which hashing only those pays


def _hash_strings(text: pa.Array, key: bytes, domain: str) -> np.ndarray:
    objs = text.to_numpy(zero_copy_only=False)
    hashed = pd.util.hash_array(objs, hash_key=derive_key(key, domain), categorize=False)
    return np.asarray(hashed, dtype=np.uint64)


def _fixed_width(matrix: np.ndarray) -> pa.Array:
    """A string array from an ``(n, width)`` matrix of ASCII codes, without copying."""
    n, width = matrix.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(matrix)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def encode(h: np.ndarray, alphabet: np.ndarray, width: int) -> pa.Array:
    """``h`` written in the base of ``alphabet`` with ``width`` digits (most significant first)."""
    matrix = np.empty((len(h), width), dtype=np.uint8)
    size = len(alphabet)
    bits = size.bit_length() - 1
    if size == 1 << bits:  # a power of two: shift and mask instead of dividing
        mask = np.uint64(size - 1)
        for pos in range(width):
            shift = np.uint64(bits * (width - 1 - pos))
            matrix[:, pos] = alphabet[(h >> shift) & mask] if shift < 64 else alphabet[0]
        return _fixed_width(matrix)
    base = np.uint64(size)
    rest = h.astype(np.uint64, copy=True)
    for pos in range(width - 1, -1, -1):
        matrix[:, pos] = alphabet[rest % base]
        rest //= base
    return _fixed_width(matrix)


def base32(h: np.ndarray, width: int = 13) -> pa.Array:
    """Crockford base32 (``0-9a-z`` without ``ilou``); 13 digits hold all 64 bits."""
    return encode(h, _CROCKFORD, width)


def hexadecimal(h: np.ndarray, width: int = 16) -> pa.Array:
    return encode(h, _HEX, width)


def decimal(h: np.ndarray, width: int = 20) -> pa.Array:
    return encode(h, _DEC, width)


def pick(pool: pa.Array, h: np.ndarray) -> pa.Array:
    """One pool entry per hash (``h mod len(pool)``)."""
    return pool.take(pa.array((h % np.uint64(len(pool))).astype(np.int64)))


def join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of string arrays and constant strings."""
    return pc.binary_join_element_wise(*parts, "")

"""Rows/s of every transformer on a shop-shaped column, against a plain pyarrow copy of it.

    .venv/bin/python benchmarks/transformers.py --rows 200000 --repeat 3

Each column is made like the sandbox shop's (``ladder/sandbox/seed.py``): emails, names, phones, one-line
addresses, IPv4/IPv6 addresses, free-text notes (70% NULL, some with a phone or an email) and
the two JSON shapes (``users.preferences``, ``payments.processor_response``). Every figure is
the median of ``--repeat`` runs on the whole column (one chunk), after one warm-up run that
builds the Faker pools. The baseline is ``column.take(0..n-1)``: a gather of every value, which
any transformer that writes a new column must at least do. ``text`` and ``json`` are also timed
through the row-by-row reference (:mod:`ladder.sanitize.scrub`) they must agree with.

The last line is ``RESULT baseline_rows_per_s=... slowest=<name> slowest_rows_per_s=...
slowest_ratio=... <name>_rows_per_s=...`` (ratio = rows/s over the baseline's).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ladder.sanitize import pools
from ladder.sanitize.registry import get_transformer, names
from ladder.sanitize.scrub import scrub_series, scrub_value

KEY = b"benchmark-pseudonym-key-0123456789"
DOMAINS = pa.array(["gmail.com", "yahoo.com", "corp.example.de", "shop-mail.io"])


def _columns(n: int, rng: np.random.Generator) -> dict[str, pa.Array]:
    def pick(pool: pa.Array) -> pa.Array:
        return pool.take(pa.array(rng.integers(0, len(pool), n)))

    def digits(width: int) -> pa.Array:
        return pc.utf8_lpad(
            pc.cast(pa.array(rng.integers(0, 10**width, n)), pa.string()), width, "0"
        )

    serial = pc.cast(pa.array(np.arange(n)), pa.string())
    email = pc.binary_join_element_wise(pick(pools.usernames()), serial, "@", pick(DOMAINS), "")
    first, last = pick(pools.first_names()), pick(pools.last_names())
    phone = pc.binary_join_element_wise(digits(3), "-", digits(3), "-", digits(4), "")
    address = pick(pools.addresses())
    octets = [pc.cast(pa.array(rng.integers(1, 255, n)), pa.string()) for _ in range(4)]
    v4 = pc.binary_join_element_wise(*octets, ".")
    ip = pc.if_else(
        pa.array(rng.random(n) < 0.9), v4, pc.binary_join_element_wise("2001:db8::", octets[0], "")
    )
    sentences = pa.array(
        [
            "Customer asked about delivery times.",
            "Left a nice review after the second order.",
            "Prefers morning deliveries on weekdays.",
            "VIP since 2021, handle with care.",
        ]
    )
    notes = pc.choose(
        pa.array(rng.choice(4, n, p=[0.7, 0.18, 0.06, 0.06]).astype(np.int8)),
        pa.nulls(n, pa.string()),
        pick(sentences),
        pc.binary_join_element_wise("Prefers a call at ", phone, ""),
        pc.binary_join_element_wise("Asked us to use ", email, " for invoices", ""),
    )
    preferences = pc.binary_join_element_wise(
        '{"shipping": {"email": "', email, '", "phone": "', phone, '", "address": "', address,
        '"}, "newsletter": ', pick(pa.array(["true", "false"])), "}", "",
    )  # fmt: skip
    response = pc.binary_join_element_wise(
        '{"id": "ch_', digits(14), '", "ip": "', v4, '", "billing_email": "', email,
        '", "cardholder_name": "', first, " ", last, '"}', "",
    )  # fmt: skip
    return {
        "email": email,
        "name": pc.binary_join_element_wise(first, last, " "),
        "phone": phone,
        "address": address,
        "ip": ip,
        "notes": notes,
        "json:preferences": preferences,
        "json:processor_response": response,
    }


def _source(name: str) -> str:
    return {
        "email": "email",
        "username": "email",
        "hash": "email",
        "keep": "email",
        "null": "email",
        "fixed": "email",
        "name": "name",
        "first_name": "name",
        "last_name": "name",
        "phone": "phone",
        "address": "address",
        "ip": "ip",
        "text": "notes",
    }[name]


def _time(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: pools, layouts, compiled patterns
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def _json_reference(column: pa.Array) -> list[str | None]:
    return [
        None if raw is None else json.dumps(scrub_value(json.loads(raw)), ensure_ascii=False)
        for raw in column.to_pylist()
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.rows
    cols = _columns(n, np.random.default_rng(7))
    every = np.arange(n)
    base = _time(lambda: cols["email"].take(pa.array(every)), args.repeat)
    base_rps = n / base
    results: dict[str, float] = {}
    for name in names():
        options = {"value": "redacted"} if name == "fixed" else {}
        if name == "json":
            for shape in ("preferences", "processor_response"):
                t = get_transformer("json")
                col = cols[f"json:{shape}"]
                results[f"json:{shape}"] = n / _time(
                    lambda t=t, col=col: t.transform(col, KEY), args.repeat
                )
            continue
        t = get_transformer(name, options)
        col = cols[_source(name)]
        results[name] = n / _time(lambda t=t, col=col: t.transform(col, KEY), args.repeat)
    unique = get_transformer("email", {"unique": True})
    results["email(unique)"] = n / _time(lambda: unique.transform(cols["email"], KEY), args.repeat)
    small = max(1, args.repeat // 3)
    reference = {
        "text(reference)": n / _time(lambda: scrub_series(cols["notes"].to_pandas()), small),
        "json:processor_response(reference)": n
        / _time(lambda: _json_reference(cols["json:processor_response"]), small),
    }
    print(f"{'transformer':<40} {'rows/s':>12} {'x copy':>8}")
    print(f"{'(baseline: pyarrow copy)':<40} {base_rps:12,.0f} {1:8.2f}")
    for label, rps in {**results, **reference}.items():
        print(f"{label:<40} {rps:12,.0f} {rps / base_rps:8.3f}")
    measured = {k: v for k, v in results.items() if k not in ("keep",)}
    slowest = min(measured, key=measured.__getitem__)
    tail = " ".join(
        f"{k.replace(':', '_').replace('(', '_').rstrip(')')}_rows_per_s={v:.0f}"
        for k, v in results.items()
    )
    print(
        f"RESULT baseline_rows_per_s={base_rps:.0f} slowest={slowest} "
        f"slowest_rows_per_s={measured[slowest]:.0f} "
        f"slowest_ratio={measured[slowest] / base_rps:.4f} {tail}"
    )


if __name__ == "__main__":
    main()

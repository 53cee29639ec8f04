"""Memory and time of a big subset plan: Ladder's key store against Python sets, same run.

    .venv/bin/python benchmarks/subset.py --users 1000000 --percent 50

Seeds the sandbox shop (``--users`` customers: ~3x orders, ~6x order items, ~3x payments) in a
throwaway cluster, then computes the subset "``--percent`` of the users, their orders, items,
payments and accounts" twice, each in a fresh child process: with the :class:`KeySet` the
executor uses, and with a baseline that stores the same keys in Python sets (what the executor
did before). Peak memory is the child's own high-water mark (``VmHWM``).

The last line is ``RESULT ratio=... peak_rss_mb=... baseline_peak_rss_mb=... keys=...
seconds=... baseline_seconds=...``: ``ratio`` is Ladder's peak over the baseline's (lower is
better); the budget is 1 GiB whatever the subset's size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ladder.connectors.postgres import create_database  # noqa: E402
from ladder.sandbox.cluster import Cluster  # noqa: E402
from ladder.sandbox.seed import seed_shop  # noqa: E402


def child(dsn: str, users: int, percent: float, baseline: bool) -> None:
    """One subset computation; prints a JSON line with its keys, seconds and peak memory."""
    from ladder.connectors.postgres import connect
    from ladder.replica.subset import build_plan, execute_plan
    from ladder.replica.subset import execute as executor

    if baseline:

        class _SetSelection(executor._Selection):  # type: ignore[name-defined]
            def __init__(self, *args: object, **kwargs: object) -> None:
                super().__init__(*args, **kwargs)
                self.keys = _SetKeys()  # type: ignore[assignment]

        executor._Selection = _SetSelection  # type: ignore[misc]
    started = time.perf_counter()
    store = "sets" if baseline else "KeySet"
    with connect(dsn, autocommit=True) as conn:
        n = int(users * percent / 100)
        plan = build_plan(conn, ["users: id <= :n"], depth=2, params={"n": n})
        with execute_plan(conn, plan, {"n": n}) as subset:
            keys = sum(subset.counts.values())
            kinds = {type(sel.keys).__name__ for sel in subset._sel.values()}
            assert kinds == {"_SetKeys" if baseline else "KeySet"}, (store, kinds)
            for table in subset.order:  # what the copy does next: one query per table
                subset.copy_query(table)
    print(
        json.dumps(
            {
                "keys": keys,
                "seconds": time.perf_counter() - started,
                "peak_mb": _hwm_kb() / 1024,
            }
        )
    )


class _SetKeys:
    """The baseline: keys in a Python set, as the executor stored them before KeySet."""

    def __init__(self) -> None:
        self.keys: set = set()

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, rows: list) -> list:
        new = []
        for row in rows:
            key = row[0] if len(row) == 1 else tuple(row)
            if key not in self.keys:
                self.keys.add(key)
                new.append(key)
        return new

    def values(self) -> list:
        return list(self.keys)

    def tolist(self) -> list:
        return list(self.keys)

    def sorted(self) -> list:
        return sorted(self.keys)


def _hwm_kb() -> int:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run_child(dsn: str, users: int, percent: float, baseline: bool) -> dict:
    argv = [sys.executable, __file__, "--child", dsn, "--users", str(users)]
    argv += ["--percent", str(percent)] + (["--baseline"] if baseline else [])
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    if out.returncode != 0:
        raise SystemExit(f"subset run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--percent", type=float, default=50.0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.users, args.percent, args.baseline)
        return
    with tempfile.TemporaryDirectory(prefix="ladder-bench-") as tmp:
        cluster = Cluster(Path(tmp) / "pg")
        cluster.init()
        cluster.start()
        try:
            create_database(cluster.dsn(), "shop")
            src = cluster.dsn("shop")
            print(f"seeding {args.users:,} users ...", flush=True)
            seed_shop(src, users=args.users, progress=lambda m: print(f"  {m}", flush=True))
            ours = run_child(src, args.users, args.percent, baseline=False)
            base = run_child(src, args.users, args.percent, baseline=True)
        finally:
            cluster.stop()
    print(f"subset of {args.percent:g}% of {args.users:,} users: {ours['keys']:,} keys")
    print(f"KeySet     : {ours['seconds']:6.1f} s, peak {ours['peak_mb']:6.0f} MB")
    print(f"Python sets: {base['seconds']:6.1f} s, peak {base['peak_mb']:6.0f} MB")
    print(
        f"RESULT ratio={ours['peak_mb'] / base['peak_mb']:.3f} peak_rss_mb={ours['peak_mb']:.0f} "
        f"baseline_peak_rss_mb={base['peak_mb']:.0f} keys={ours['keys']} "
        f"seconds={ours['seconds']:.2f} baseline_seconds={base['seconds']:.2f}"
    )


if __name__ == "__main__":
    main()

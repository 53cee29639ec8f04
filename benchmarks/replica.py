"""Raw ``pg_dump | psql`` against ``ladder replica create --all``, on two shapes of database.

    .venv/bin/python benchmarks/replica.py --users 1000000 --pii-rows 3000000 --repeat 3

``--shape shop`` builds the sandbox shop (``--users`` customers: ~3x orders, ~6x order items);
``--shape pii`` a PII-heavy database (``--pii-rows`` rows, :mod:`pii_shape`: half the free text
holds phones, emails, cards, tokens and IPs, plus JSONB profiles with nested contacts); the
default ``both`` measures one after the other in the same run. For each, in a throwaway cluster,
each figure a median of ``--repeat`` runs into a fresh database:

* raw: ``pg_dump -t <every table> src | psql new`` (schema, data, indexes and constraints);
* ladder: ``create_replica(..., all_tables=True)`` with ``runbooks/policies/shop.yaml`` (every PII
  column transformed, validated, swapped in), in a child process. Its peak memory is the larger
  of the Python process's own high-water mark (``VmHWM``) and the sum of the RSS of its whole tree
  (Python plus its ``psql``/``pg_restore`` children), sampled from ``/proc`` every 20 ms;
* subset (shop only): 1% of the customers with their orders, items, payments and accounts.

Each raw run is followed at once by a ladder run. The last line is ``RESULT ratio_shop=...
ratio_pii=... peak_rss_mb=... ...``: a ratio is the median over the pairs of ladder rows/s over
raw rows/s (both count the same rows); ``peak_rss_mb`` the largest over every ladder run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ladder.connectors.postgres import create_database, drop_database, find_bindir  # noqa: E402
from ladder.sandbox.cluster import Cluster  # noqa: E402
from ladder.sandbox.seed import seed_shop  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from pii_shape import POLICY as PII_POLICY  # noqa: E402
from pii_shape import TABLES as PII_TABLES  # noqa: E402
from pii_shape import seed_pii  # noqa: E402

SHOP_POLICY = ROOT / "runbooks" / "policies" / "shop.yaml"
SHOP_TABLES = (
    "users",
    "accounts",
    "orders",
    "order_items",
    "payments",
    "schema_migrations",
    "flipper_features",
    "flipper_gates",
)


def raw_copy(src: str, dst: str, tables: tuple[str, ...]) -> float:
    """Seconds for ``pg_dump -t ... src | psql dst`` (argv lists, an OS pipe, no shell)."""
    bindir = find_bindir()
    dump = [str(bindir / "pg_dump"), f"--dbname={src}", "--no-owner"]
    dump += [f"--table=public.{t}" for t in tables]
    load = [str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", f"--dbname={dst}"]
    started = time.perf_counter()
    p1 = subprocess.Popen(dump, stdout=subprocess.PIPE)
    p2 = subprocess.run(load, stdin=p1.stdout, stdout=subprocess.DEVNULL, check=False)
    assert p1.stdout is not None
    p1.stdout.close()
    if p1.wait() != 0 or p2.returncode != 0:
        raise SystemExit("raw pg_dump | psql failed")
    return time.perf_counter() - started


KEY = "benchmark-pseudonym-key-0123456789"


def ladder_child(args: argparse.Namespace) -> None:
    """Runs in a child process: one create_replica, prints a JSON line with time and memory."""
    from pydantic import SecretStr

    from ladder.leases import LeaseLedger
    from ladder.replica.pipeline import create_replica

    seeds = [args.seed] if args.seed else []
    params = {"n": args.n} if args.seed else {}
    result = create_replica(
        args.src,
        args.dst,
        args.policy,
        all_tables=not seeds,
        seeds=seeds,
        params=params,
        ledger=LeaseLedger(args.ledger),
        key=SecretStr(KEY),  # given, not put into os.environ for the policy's ref to find
    )
    # Not ru_maxrss: Linux carries the parent's high-water mark across the vfork+exec that
    # started this process (the parent holds the seeded shop's pools), so it reads ~900 MB here
    # whatever this process did. VmHWM belongs to this process's own address space.
    me = _status_kb(os.getpid(), "VmHWM") / 1024
    print(
        json.dumps(
            {
                "seconds": result.seconds,
                "copy_seconds": result.copy_seconds,
                "steps": result.step_seconds,
                "rows": sum(result.tables.values()),
                "self_mb": me,
                "tables": result.throughput(),
            }
        )
    )


def _status_kb(pid: int, field: str = "VmRSS") -> int:
    """A memory figure (kB) of ``pid`` from ``/proc/PID/status``; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from the parent ids in ``/proc/*/stat``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


class TreeMemory:
    """Samples the summed RSS of a process tree in a thread; ``peak_mb`` is the largest sum."""

    def __init__(self, pid: int, every: float = 0.02):
        self.pid, self.every, self.peak_kb = pid, every, 0
        self.at_peak: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            sizes = [(os.path.basename(_exe(p)), _status_kb(p)) for p in self._processes()]
            total = sum(kb for _, kb in sizes)
            if total > self.peak_kb:
                self.peak_kb, self.at_peak = total, sizes
            self._stop.wait(self.every)

    def breakdown(self) -> str:
        """What the peak was made of: ``name MB`` per process, largest first."""
        return ", ".join(
            f"{n} {kb / 1024:.0f}" for n, kb in sorted(self.at_peak, key=lambda x: -x[1])
        )

    def _processes(self) -> list[int]:
        """The tree, less children caught between vfork and exec: they still run in the
        parent's memory (their VmRSS is the parent's), so counting them counts it twice."""
        try:
            python = os.readlink(f"/proc/{self.pid}/exe")
        except OSError:
            return []
        return [p for p in _tree(self.pid) if p == self.pid or _exe(p) != python]

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kb / 1024


def run_ladder(
    src: str, dst: str, ledger: str, policy: Path, seed: str | None = None, n: int = 0
) -> dict:
    argv = [sys.executable, __file__, "--child", "--src", src, "--dst", dst, "--ledger", ledger]
    argv += ["--policy", str(policy)]
    if seed:
        argv += ["--seed", seed, "--n", str(n)]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    tree = TreeMemory(proc.pid) if os.path.isdir("/proc") else None
    out, err = proc.communicate()
    tree_mb = tree.stop() if tree else 0.0
    if tree:
        print(f"    peak memory made of (MB): {tree.breakdown()}", flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"ladder run failed:\n{err[-3000:]}")
    run = json.loads(out.strip().splitlines()[-1])
    run["tree_mb"] = tree_mb
    run["peak_mb"] = max(tree_mb, run["self_mb"])
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=["shop", "pii", "both"], default="both")
    ap.add_argument("--users", type=int, default=1_000_000, help="customers of the shop")
    ap.add_argument("--pii-rows", type=int, default=3_000_000, help="rows of the PII-heavy db")
    ap.add_argument("--repeat", type=int, default=3)
    for hidden in ("--src", "--dst", "--ledger", "--seed", "--policy"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        ladder_child(args)
        return
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ladder-bench-") as tmp:
        cluster = Cluster(Path(tmp) / "pg")
        cluster.init()
        cluster.start()
        ledger = f"sqlite:///{tmp}/leases.db"
        try:
            if args.shape in ("shop", "both"):
                figures.update(bench_shop(cluster, args.users, args.repeat, ledger))
            if args.shape in ("pii", "both"):
                figures.update(bench_pii(cluster, args.pii_rows, args.repeat, ledger))
        finally:
            cluster.stop()
    peaks = [v for k, v in figures.items() if k.startswith("peak_rss_mb")]
    figures["peak_rss_mb"] = max(peaks)
    print(
        "RESULT "
        + " ".join(f"{k}={v:.3f}" if v < 100 else f"{k}={v:.0f}" for k, v in figures.items())
    )


def bench_shop(cluster: Cluster, users: int, repeat: int, ledger: str) -> dict[str, float]:
    admin = cluster.dsn()
    create_database(admin, "shop")
    src = cluster.dsn("shop")
    print(f"seeding {users:,} users ...", flush=True)
    seeded = seed_shop(src, users=users, progress=lambda m: print(f"  {m}", flush=True))
    print(f"source: {seeded.counts} ({sum(seeded.counts.values()):,} rows in the big tables)")
    out = compare(cluster, src, SHOP_TABLES, SHOP_POLICY, repeat, ledger, "shop")
    n = max(1, users // 100)
    subset = run_ladder(src, cluster.dsn("subset"), ledger, SHOP_POLICY, "users: id <= :n", n)
    print(f"subset 1% of users : {subset['seconds']:.1f} s, {subset['rows']:,} rows")
    out["subset_seconds"] = subset["seconds"]
    out["peak_rss_mb_subset"] = subset["peak_mb"]
    return out


def bench_pii(cluster: Cluster, rows: int, repeat: int, ledger: str) -> dict[str, float]:
    admin = cluster.dsn()
    create_database(admin, "pii")
    src = cluster.dsn("pii")
    print(f"seeding {rows:,} PII-heavy rows ...", flush=True)
    counts = seed_pii(src, rows, say=lambda m: print(f"  {m}", flush=True))
    print(f"source: {counts}")
    return compare(cluster, src, PII_TABLES, PII_POLICY, repeat, ledger, "pii")


def compare(
    cluster: Cluster,
    src: str,
    tables: tuple[str, ...],
    policy: Path,
    repeat: int,
    ledger: str,
    label: str,
) -> dict[str, float]:
    """Back-to-back raw and ladder runs; this shape's ratio, rows/s and peak memory."""
    admin = cluster.dsn()
    raw_times, ladder_runs = [], []
    for i in range(repeat):
        create_database(admin, f"raw_{i}")
        raw_times.append(raw_copy(src, cluster.dsn(f"raw_{i}"), tables))
        drop_database(admin, f"raw_{i}")
        print(f"[{label}] raw run {i + 1}: {raw_times[-1]:.1f} s", flush=True)
        run = run_ladder(src, cluster.dsn(f"replica_{label}"), ledger, policy)
        ladder_runs.append(run)
        print(
            f"[{label}] ladder run {i + 1}: {run['seconds']:.1f} s"
            f" (copy phase {run['copy_seconds']:.1f} s), peak RSS {run['self_mb']:.0f} MB"
            f" (process tree {run['tree_mb']:.0f} MB)",
            flush=True,
        )
        print("    steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in run["steps"].items()))
    copied = ladder_runs[0]["rows"]
    raw_s = statistics.median(raw_times)
    ladder_s = statistics.median(r["seconds"] for r in ladder_runs)
    raw_rps, ladder_rps = copied / raw_s, copied / ladder_s
    # Each raw run and the ladder run right after it share the machine's mood of the moment:
    # the median of the pairs' ratios shrugs off a slow minute better than a ratio of medians.
    paired = statistics.median(
        r / run["seconds"] for r, run in zip(raw_times, ladder_runs, strict=True)
    )
    print(f"\n[{label}] rows copied: {copied:,}")
    print(f"raw pg_dump | psql : {raw_s:7.1f} s  {raw_rps:12,.0f} rows/s")
    print(f"ladder --all       : {ladder_s:7.1f} s  {ladder_rps:12,.0f} rows/s")
    for t in ladder_runs[-1]["tables"]:
        print(f"    {t['table']:<28} {t['rows']:>10,} rows {t['seconds']:7.2f} s")
    print(
        f"ratio              : {paired:.2f} (median of {repeat} back-to-back pairs;"
        f" ratio of the medians {ladder_rps / raw_rps:.2f})"
    )
    return {
        f"ratio_{label}": paired,
        f"ratio_of_medians_{label}": ladder_rps / raw_rps,
        f"raw_rows_per_s_{label}": raw_rps,
        f"ladder_rows_per_s_{label}": ladder_rps,
        f"peak_rss_mb_{label}": max(r["peak_mb"] for r in ladder_runs),
    }


if __name__ == "__main__":
    main()

"""COPY streams from a source snapshot into a target database, sanitizing on the way.

Each table is read by a ``psql`` running ``COPY (query) TO STDOUT`` inside the source's exported
snapshot and written by a second ``psql`` running ``COPY ... FROM STDIN`` on the target:

* a table with no transformed column is piped through untouched (text format, 1 MiB blocks;
  Python only counts newlines for progress, since text-format COPY escapes newlines in values);
* a table with transformed columns travels as CSV, parsed by pyarrow in bounded blocks
  (every column as a string, NULL kept apart from ''; Arrow reads ahead in its own threads),
  its PII columns transformed vectorized, and re-encoded to CSV and written by a writer thread
  while the next block is transformed.

Each target table is emptied and loaded in one transaction (``TRUNCATE ONLY``, then ``COPY ...
FREEZE``): the rows arrive frozen, so the index builds and the gate that read them next do not
rewrite every page to set hint bits (~1/3 off the post-data step). ``ONLY`` spares an
inheritance parent's children (another copy loads them); a partitioned table is loaded through
its root, which routes rows to partitions, without ``FREEZE`` (refused there). The targets must
be the new, empty tables of a replica being built, never tables someone else uses.

Tables are copied ``workers`` at a time. Memory is bounded by the block size and queue depth,
whatever the table size (see :func:`_bounded_memory`). The row
count of each transformed column whose value came out equal to the original in the same row is
counted on the way (for the validation gate).
"""

from __future__ import annotations

import ctypes
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ladder.connectors.postgres import connect, find_bindir
from ladder.errors import PostgresError
from ladder.sanitize.blank import count_survivors
from ladder.sanitize.fit import char_limit, fit
from ladder.sanitize.registry import Transformer

Progress = Callable[[str, int, int], None]

PIPE_BLOCK = 1 << 20
CSV_BLOCK = 4 << 20  # bytes of CSV parsed at a time: bounds memory per table
QUEUE_DEPTH = 3
PROGRESS_EVERY = 0.25  # seconds between progress calls per table
JEMALLOC_DECAY_MS = 1000


@dataclass(frozen=True)
class TableCopy:
    """How one table travels: the source query, target columns, and its transformers."""

    name: str  # schema.relname
    schema: str
    relname: str
    columns: tuple[str, ...]
    query: sql.Composable  # SELECT of ``columns`` in this order
    transforms: dict[str, Transformer] = field(default_factory=dict)
    survival: frozenset[str] = frozenset()  # transformed columns whose originals must not survive
    types: dict[str, str] = field(default_factory=dict)  # SQL type of each transformed column
    expected_rows: int = 0
    partitioned: bool = False  # a partitioned table's root: rows go to its partitions


@dataclass
class TableStats:
    """What copying one table did."""

    table: str
    rows: int = 0
    seconds: float = 0.0
    survivors: dict[str, int] = field(default_factory=dict)


def psql_argv(dsn: str, *extra: str) -> tuple[list[str], dict[str, str]]:
    """``psql`` argv for ``dsn`` with the password moved into the environment (never in argv)."""
    params = conninfo_to_dict(dsn)
    env = {"PGAPPNAME": "ladder-replica"}
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)
    argv = [
        str(find_bindir() / "psql"),
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        f"--dbname={make_conninfo(**params)}",
        *extra,
    ]
    return argv, env


def conninfo_env(dsn: str) -> tuple[str, dict[str, str]]:
    """``dsn`` without its password, and the environment carrying it (for pg_dump/pg_restore)."""
    params = conninfo_to_dict(dsn)
    password = params.pop("password", None)
    return make_conninfo(**params), ({"PGPASSWORD": str(password)} if password else {})


class _Streams:
    """The psql processes of running copies, so a failure anywhere can stop them all."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self.failed = threading.Event()

    def start(self, argv: list[str], env: dict[str, str], **kw: object) -> subprocess.Popen[bytes]:
        if self.failed.is_set():
            raise PostgresError("copy stopped: another table failed")
        proc = subprocess.Popen(argv, env={**os.environ, **env}, stderr=subprocess.PIPE, **kw)
        with self._lock:
            self._procs.append(proc)
        return proc

    def kill_all(self) -> None:
        self.failed.set()
        with self._lock:
            for proc in self._procs:
                if proc.poll() is None:
                    proc.kill()


def copy_tables(
    source_dsn: str,
    snapshot_id: str,
    target_dsn: str,
    copies: Sequence[TableCopy],
    key: bytes,
    *,
    workers: int = 2,
    progress: Progress | None = None,
) -> dict[str, TableStats]:
    """Copy every table of ``copies`` (``workers`` at a time); stats per table, in input order.

    Each target table is truncated first, in the transaction of its COPY (see the module doc).
    """
    _bounded_memory()
    streams = _Streams()
    if progress:
        for c in copies:
            progress(c.name, 0, c.expected_rows)
    with tempfile.TemporaryDirectory(prefix="ladder-copy-") as tmp:
        with connect(source_dsn) as conn:
            scripts = {c.name: _source_script(conn, c, snapshot_id, Path(tmp)) for c in copies}
        # Costliest first (transformed rows cost ~10x piped ones), small ones fill the gaps.
        ordered = sorted(copies, key=lambda c: -c.expected_rows * (10 if c.transforms else 1))
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="copy") as pool:
            futures = {
                c.name: pool.submit(
                    _copy_one, source_dsn, target_dsn, c, scripts[c.name], key, streams, progress
                )
                for c in ordered
            }
            stats: dict[str, TableStats] = {}
            try:
                for c in copies:
                    stats[c.name] = futures[c.name].result()
            except BaseException:
                streams.kill_all()
                for fut in futures.values():
                    fut.cancel()
                raise
    return stats


def _bounded_memory() -> None:
    """Keep the process near the working set of the blocks in flight, whatever the table size.

    Two allocators held on to what a long copy freed (the process grew to ~0.8 GB at 13M rows):
    Arrow's default pool on Linux (mimalloc), replaced by jemalloc returning freed pages after a
    second (at once, every block faulted its pages in again: 10x the page faults, +1 s of system
    time per 3M-row table); and glibc malloc, whose threshold for serving big buffers (~1-4 MiB)
    by mmap rises after the first one is freed, after which they fragment the heap. Fixing the
    threshold at 1 MiB keeps them mmapped. Process-wide, and harmless to repeat; skipped where
    the allocator is not there.
    """
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(JEMALLOC_DECAY_MS)
    except NotImplementedError:  # a pyarrow built without jemalloc: keep its default
        pass
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, PIPE_BLOCK)
    except (OSError, AttributeError):  # not glibc
        pass


_M_MMAP_THRESHOLD = -3  # glibc malloc.h


def _source_script(conn: psycopg.Connection, copy: TableCopy, snapshot_id: str, tmp: Path) -> Path:
    fmt = sql.SQL(" (FORMAT csv)") if copy.transforms else sql.SQL("")
    script = sql.SQL(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\n"
        "SET TRANSACTION SNAPSHOT {};\n"
        "COPY ({}) TO STDOUT{};\n"
        "COMMIT;\n"
    ).format(sql.Literal(snapshot_id), copy.query, fmt)
    path = tmp / f"{len(list(tmp.iterdir()))}.sql"
    path.write_text(script.as_string(conn))
    return path


def _target_sql(copy: TableCopy, csv: bool) -> tuple[str, str]:
    """The ``TRUNCATE`` and ``COPY`` statements that load ``copy``'s target table (module doc).

    Names enter only as identifiers, the rest is fixed text (psql runs them, so they are rendered
    here, with no connection needed for quoting identifiers).
    """
    table = sql.Identifier(copy.schema, copy.relname)
    options = (["FORMAT csv"] if csv else []) + ([] if copy.partitioned else ["FREEZE"])
    truncate = sql.SQL("TRUNCATE {}" if copy.partitioned else "TRUNCATE ONLY {}").format(table)
    load = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
        table,
        sql.SQL(", ").join(map(sql.Identifier, copy.columns)),
        sql.SQL(f" ({', '.join(options)})" if options else ""),
    )
    return truncate.as_string(None), load.as_string(None)


def _copy_one(
    source_dsn: str,
    target_dsn: str,
    copy: TableCopy,
    script: Path,
    key: bytes,
    streams: _Streams,
    progress: Progress | None,
) -> TableStats:
    started = time.perf_counter()
    src_argv, src_env = psql_argv(source_dsn, "-f", str(script))
    truncate, load = _target_sql(copy, bool(copy.transforms))
    dst_argv, dst_env = psql_argv(
        target_dsn, "-c", "BEGIN", "-c", truncate, "-c", load, "-c", "COMMIT"
    )
    src = streams.start(src_argv, src_env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    dst = streams.start(dst_argv, dst_env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert src.stdout is not None and dst.stdin is not None
    errs = {p: _drain(p) for p in (src, dst)}
    report = _Reporter(copy, progress)
    stats = TableStats(copy.name)
    try:
        if copy.transforms:
            _transform_stream(copy, src.stdout, dst.stdin, key, stats, report)
        else:
            _pipe_stream(src.stdout, dst.stdin, stats, report)
        dst.stdin.close()
    except (BrokenPipeError, OSError, pa.ArrowInvalid) as exc:
        src.kill()
        dst.kill()
        _wait_both(copy, src, dst, errs, cause=exc)
        raise  # _wait_both raises when psql said why; otherwise the original error
    _wait_both(copy, src, dst, errs)
    stats.seconds = time.perf_counter() - started
    report.done(stats.rows)
    return stats


def _drain(proc: subprocess.Popen[bytes]) -> list[bytes]:
    """Collect stderr in a thread (a full pipe would block psql)."""
    buf: list[bytes] = []
    assert proc.stderr is not None
    stream = proc.stderr
    threading.Thread(target=lambda: buf.append(stream.read()), daemon=True).start()
    return buf


def _wait_both(
    copy: TableCopy,
    src: subprocess.Popen[bytes],
    dst: subprocess.Popen[bytes],
    errs: dict[subprocess.Popen[bytes], list[bytes]],
    cause: BaseException | None = None,
) -> None:
    for side, proc in (("reading from the source", src), ("writing to the target", dst)):
        code = proc.wait()
        deadline = time.monotonic() + 5
        while not errs[proc] and time.monotonic() < deadline:
            time.sleep(0.01)
        text = b"".join(errs[proc]).decode(errors="replace").strip()
        if code != 0 and (cause is None or text):
            tail = "\n".join(text.splitlines()[-5:]) or f"psql exited {code}"
            raise PostgresError(f"copying {copy.name}: {side} failed: {tail}") from cause


class _Reporter:
    def __init__(self, copy: TableCopy, progress: Progress | None):
        self.copy, self.progress, self.last = copy, progress, 0.0

    def rows(self, done: int) -> None:
        now = time.monotonic()
        if self.progress and now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.progress(self.copy.name, done, max(done, self.copy.expected_rows))

    def done(self, rows: int) -> None:
        if self.progress:
            self.progress(self.copy.name, rows, rows)


def _pipe_stream(src: IO[bytes], dst: IO[bytes], stats: TableStats, report: _Reporter) -> None:
    """Text-format COPY bytes passed through; one newline per row."""
    fd = src.fileno()
    block = bytearray(PIPE_BLOCK)  # one buffer for the whole table: no allocation per read
    view = memoryview(block)
    while n := os.readv(fd, [block]):
        dst.write(view[:n])
        stats.rows += block.count(b"\n", 0, n)
        report.rows(stats.rows)


def _transform_stream(
    copy: TableCopy,
    src: IO[bytes],
    dst: IO[bytes],
    key: bytes,
    stats: TableStats,
    report: _Reporter,
) -> None:
    """CSV in, PII columns transformed per block, CSV out through a writer thread."""
    strings = {c: pa.string() for c in copy.columns}
    head = src.peek(1)[:1] if hasattr(src, "peek") else b"x"
    if not head:
        return  # no rows: pyarrow refuses an empty CSV stream
    reader = pacsv.open_csv(
        src,
        read_options=pacsv.ReadOptions(
            column_names=list(copy.columns), block_size=CSV_BLOCK, use_threads=True
        ),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=strings,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        ),
    )
    out: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=QUEUE_DEPTH)
    failure: list[BaseException] = []
    options = pacsv.WriteOptions(include_header=False)

    def write() -> None:
        # Encoding to CSV (C++, without the GIL) overlaps the next block's transforms.
        try:
            while (batch := out.get()) is not None:
                sink = pa.BufferOutputStream()
                pacsv.write_csv(batch, sink, options)
                dst.write(memoryview(sink.getvalue()))
        except BaseException as exc:
            failure.append(exc)
            while out.get() is not None:  # keep the producer from blocking forever
                pass

    writer = threading.Thread(target=write, name=f"write-{copy.name}", daemon=True)
    writer.start()
    stats.survivors = dict.fromkeys(sorted(copy.survival), 0)
    try:
        for batch in reader:
            arrays = list(batch.columns)
            for i, name in enumerate(copy.columns):
                t = copy.transforms.get(name)
                if t is None:
                    continue
                new = t.transform(arrays[i], key)
                if isinstance(new, pa.ChunkedArray):
                    new = new.combine_chunks()
                sql_type = copy.types.get(name, "")
                if (limit := char_limit(sql_type)) is not None:
                    new = fit(new, limit, f"{copy.name}.{name}", sql_type, t)
                if name in copy.survival:
                    stats.survivors[name] += count_survivors(arrays[i], new)
                arrays[i] = new
            if failure:
                break
            out.put(pa.RecordBatch.from_arrays(arrays, list(copy.columns)))
            stats.rows += batch.num_rows
            report.rows(stats.rows)
    finally:
        out.put(None)
        writer.join()
    if failure:
        raise failure[0]

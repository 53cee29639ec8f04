"""rbtrace against one Ruby process on a host: preflight, eval, a tracer that always detaches.

What rbtrace does (Debian ruby-rbtrace 0.4.14; see FACTS.md "Puma + rbtrace"):

- ``rbtrace -p PID -e EXPR`` prints ``>> EXPR`` / ``=> RESULT`` and exits 0 **even when EXPR
  raised** (``=> #<NoMethodError: ...>``): :func:`evaluate` reads the result and raises
  :class:`~ladder.errors.RbtraceError` for an exception. EXPR must stay under ~250 bytes: probes
  are files, loaded with ``load "..."``.
- a target that never required rbtrace answers ``pid is not listening for messages``;
  :func:`explain` says what to do about it.
- one tracer per process: a SIGKILLed client leaves ``/tmp/rbtrace-PID.sock`` behind and every
  later attach fails until it is removed (:func:`preflight` removes a stale one).
- ``kernel.msgmnb`` below 1 MiB loses events; as root rbtrace raises it itself.

A tracer (:func:`start_tracer`) is rbtrace's own client with a few added lines (``_ACKING_CLIENT``)
that make sure the target has taken every method selector and say so, so Ladder knows when
tracing has begun. It runs detached on the host under ``timeout --foreground -s INT`` (one
SIGINT to the client only, not a second one to its process group), so it stops with SIGINT
(and detaches) at its deadline even if Ladder dies; :func:`stop_tracer` sends SIGINT
now, waits for the detach, and only then falls back to SIGKILL plus removing the socket.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ladder.connectors.hosts import Host, alive, signal, spawn
from ladder.errors import RbtraceError

__all__ = [
    "MIN_MSGMNB", "Preflight", "Tracer", "evaluate", "explain", "preflight", "socket_path",
    "start_tracer", "stop_tracer", "tracer_clients",
]  # fmt: skip

MIN_MSGMNB = 1024 * 1024
EVAL_TIMEOUT = 5  # rbtrace's own attach/eval timeout, seconds
# The target answers each method selector (``add``) with the tracer's id once its hook is in,
# but rbtrace's client keeps that answer to itself and does not make sure the target has read
# every selector: a signal can land while the target is still reading the previous one, and the
# rest then wait in the queue until something else wakes it. Ladder runs rbtrace's own client
# with a few added lines: after sending the selectors it keeps signalling the target (rbtrace's
# own ``wait``) until every one has been answered, then prints one TRACING line per answer.
TRACING = "*** ladder: tracing "
_ACKING_CLIENT = "; ".join([
    'require "rbtrace/cli"',
    "class RBTracer",
    "alias_method :ladder_process_line, :process_line",
    "def process_line(line)",
    "cmd = parse_cmd(line)",
    "ladder_process_line(line)",
    '(@ladder_taken ||= []) << cmd[2] if cmd.is_a?(Array) && cmd[0] == "add" && cmd[1] != -1',
    "end",
    "alias_method :ladder_add, :add",
    "def add(methods, slow = false)",
    "ladder_add(methods, slow)",
    "@ladder_sent = (@ladder_sent || 0) + Array(methods).count { |m| !m.strip.empty? }",
    'wait("for the target to take the method selectors") { (@ladder_taken ||= []).size >= @ladder_sent }',
    # said only once out of ``wait``, which swallows a SIGINT: Ladder may stop the tracer now
    f'@ladder_taken.drop(@ladder_said || 0).each {{ |q| STDERR.puts("{TRACING}#{{q}}") }}',
    "@ladder_said = @ladder_taken.size",
    "end",
    "end",
    "RBTraceCLI.run",
])  # fmt: skip
# A tracer with no method selector (``--slow`` alone) gets no answer to wait for.
SETTLE_WITHOUT_SELECTORS = 1.0
ATTACH_WAIT = EVAL_TIMEOUT + 10  # seconds for the attach and every selector's answer
_EXCEPTION = re.compile(r"^#<(?P<cls>[A-Z]\w*(?:::[A-Z]\w*)*): (?P<message>.*)>$", re.S)
_SAFE_PATH = re.compile(r"^/[\w./-]+$")


def socket_path(pid: int) -> str:
    return f"/tmp/rbtrace-{pid}.sock"  # noqa: S108  # rbtrace's own fixed path


def explain(pid: int, said: str) -> str:
    """rbtrace's complaint about ``pid``, with what to do about it."""
    if "not listening" in said:
        return (
            f"pid {pid} does not have rbtrace loaded (rbtrace: 'pid is not listening for "
            "messages'): start Puma with RUBYOPT=-rrbtrace, or add gem 'rbtrace' and "
            "require 'rbtrace' to the app, then restart it"
        )
    if "could not signal" in said:
        return (
            f"cannot signal pid {pid}: rbtrace must run as the app's user (or root) on the "
            "same host and /tmp"
        )
    if "timed out" in said:
        return (
            f"pid {pid} did not answer within {EVAL_TIMEOUT} s ({said}): it is busy or blocked, "
            "or could not read what it was asked to load"
        )
    if "invalid pid" in said:
        return f"pid {pid} is not running"
    if "Address already in use" in said or "EADDRINUSE" in said:
        return (
            f"a stale rbtrace socket {socket_path(pid)} blocks attaching to pid {pid} "
            "(left by a killed tracer): remove it"
        )
    return f"rbtrace could not attach to pid {pid}: {said}"


def _said(text: str) -> str:
    """rbtrace's complaint: its ``Error: ...`` line, else its last line that is not chatter."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error") or "timed out" in ln]
    rest = [ln for ln in lines if not ln.startswith(("***", "Try --help"))]
    return (errors or rest or lines[-1:] or [""])[0 if errors else -1].lstrip("* ")


def evaluate(host: Host, pid: int, expr: str) -> str:
    """Evaluate the Ruby expression ``expr`` (a constant or a ``load`` of a reviewed file) in
    ``pid``; its result's ``inspect``. An exception in the target raises RbtraceError."""
    if len(expr.encode()) > 200:
        raise RbtraceError(f"rbtrace expression too long ({len(expr)} bytes): load a probe file")
    res = host.run(
        ["rbtrace", "-p", str(pid), "--timeout", str(EVAL_TIMEOUT), "-e", expr],
        timeout=EVAL_TIMEOUT * 3 + 10,
    )
    result = None
    for line in res.stdout.splitlines():
        if line.startswith("=> "):
            result = line[3:]
        elif result is not None:
            result += "\n" + line  # a multi-line inspect
    if result is None:
        raise RbtraceError(f"{host.label}: {explain(pid, _said(res.stderr + res.stdout))}")
    raised = _EXCEPTION.match(result.strip())
    if raised:
        raise RbtraceError(
            f"{host.label}: pid {pid} raised {raised['cls']}: {raised['message']} (in {expr})"
        )
    return result.strip()


def load_file(host: Host, pid: int, path: str) -> str:
    """``load`` a file already on the host into ``pid``; RbtraceError if it raised."""
    if not _SAFE_PATH.match(path):
        raise RbtraceError(f"refusing to load {path!r}: only plain absolute paths")
    return evaluate(host, pid, f'load "{path}"')


def tracer_clients(host: Host, pid: int) -> list[int]:
    """Pids of rbtrace clients attached to ``pid`` on ``host`` (by their command line)."""
    res = host.run(["ps", "-ww", "-eo", "pid=,args="], timeout=30)  # -ww: never cut
    found = []
    for line in res.stdout.splitlines():
        parts = line.split(None, 1)
        if len(parts) < 2 or "rbtrace" not in parts[1] or parts[1].startswith("timeout"):
            continue
        words = parts[1].split()
        for flag in ("-p", "--pid"):
            if flag in words[:-1] and words[words.index(flag) + 1] == str(pid):
                found.append(int(parts[0]))
    return found


@dataclass
class Preflight:
    """What the checks found before tracing ``pid``: ``notes`` to report, ``ruby`` version."""

    pid: int
    ruby: str = ""
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        return "\n".join(
            f"- {n}" for n in [f"target pid {self.pid}, Ruby {self.ruby}", *self.notes]
        )


def preflight(host: Host, pid: int) -> Preflight:
    """Check that ``pid`` can be traced now; remove a stale socket. RbtraceError says why not."""
    found = Preflight(pid)
    if not host.run(["rbtrace", "--version"], timeout=30).ok:
        raise RbtraceError(
            f"{host.label}: the rbtrace client is not installed (Debian package ruby-rbtrace)"
        )
    attached = tracer_clients(host, pid)
    if attached:
        raise RbtraceError(
            f"{host.label}: pid {pid} already has a tracer attached (rbtrace pid "
            f"{', '.join(map(str, attached))}); rbtrace allows one per process"
        )
    sock = socket_path(pid)
    if host.run(["test", "-e", sock], timeout=30).ok:
        removed = host.run(["rm", "-f", "--", sock], timeout=30)
        if not removed.ok:
            raise RbtraceError(f"{host.label}: cannot remove stale {sock}: {removed.tail()}")
        found.notes.append(f"removed a stale rbtrace socket {sock} (left by a killed tracer)")
    msgmnb = host.run(["cat", "/proc/sys/kernel/msgmnb"], timeout=30).stdout.strip()
    if msgmnb.isdigit() and int(msgmnb) < MIN_MSGMNB:
        root = host.run(["id", "-u"], timeout=30).stdout.strip() == "0"
        found.notes.append(
            f"kernel.msgmnb is {msgmnb} bytes (< {MIN_MSGMNB}): "
            + ("rbtrace runs as root and raises it itself" if root else
               "events may be lost; ask for `sudo sysctl kernel.msgmnb=1048576` on the host")
        )  # fmt: skip
    elif msgmnb.isdigit():
        found.notes.append(f"kernel.msgmnb is {msgmnb} bytes")
    found.ruby = evaluate(host, pid, "RUBY_VERSION").strip('"')
    found.notes.append("rbtrace is loaded in the target")
    return found


@dataclass(frozen=True)
class Tracer:
    """A tracer running detached on a host: ``pid`` is its ``timeout`` wrapper's."""

    pid: int
    target: int
    output: str


def tracer_argv(
    target: int, methods: Sequence[str], slow_ms: int | None, seconds: int
) -> list[str]:
    argv = ["timeout", "--foreground", "-s", "INT", "-k", "10", str(seconds + ATTACH_WAIT)]
    argv += ["ruby", "-e", _ACKING_CLIENT, "--", "-p", str(target)]
    argv += ["--timeout", str(EVAL_TIMEOUT)]
    if slow_ms is not None:
        argv += ["--slow", str(slow_ms)]
    if methods:
        argv += ["-m", *methods]
    return argv


def start_tracer(
    host: Host, target: int, methods: Sequence[str], slow_ms: int | None, seconds: int, output: str
) -> Tracer:
    """Attach a tracer to ``target``; returned once the target has taken every method selector.
    It stops by itself (SIGINT) ``seconds`` after that at the latest, even if Ladder dies."""
    pid = spawn(host, tracer_argv(target, methods, slow_ms, seconds), output)
    tracer = Tracer(pid, target, output)
    deadline = time.monotonic() + ATTACH_WAIT
    text = ""
    while time.monotonic() < deadline:
        text = host.run(["cat", "--", output], timeout=30).stdout
        if "unable to add tracer" in text:
            stop_tracer(host, tracer)
            raise RbtraceError(f"{host.label}: pid {target} refused a method selector: {_said(text)}")
        attached = f"attached to process {target}" in text
        if attached and text.count(TRACING) >= len(methods):
            if not methods:
                time.sleep(SETTLE_WITHOUT_SELECTORS)
            return tracer
        if not alive(host, pid):
            raise RbtraceError(f"{host.label}: {explain(target, _said(text))}")
        time.sleep(0.2)
    stop_tracer(host, tracer)
    if f"attached to process {target}" in text:
        raise RbtraceError(
            f"{host.label}: pid {target} took {text.count(TRACING)} of {len(methods)} method "
            f"selectors in {ATTACH_WAIT} s: it is busy or blocked"
        )
    raise RbtraceError(f"{host.label}: the tracer did not attach to pid {target} in time")


def stop_tracer(host: Host, tracer: Tracer, wait: float = 10) -> str:
    """SIGINT the tracer, wait until it has detached; its output (and the file removed).

    Idempotent. A tracer that does not stop is SIGKILLed and the socket it left is removed, so
    the target can be traced again.
    """
    signal(host, tracer.pid, "INT")
    deadline = time.monotonic() + wait
    while alive(host, tracer.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive(host, tracer.pid):
        signal(host, tracer.pid, "KILL")
        for client in tracer_clients(host, tracer.target):
            signal(host, client, "KILL")
        host.run(["rm", "-f", "--", socket_path(tracer.target)], timeout=30)
    text = host.run(["cat", "--", tracer.output], timeout=30).stdout
    host.run(["rm", "-f", "--", tracer.output], timeout=30)
    return text


def detach_all(host: Host, target: int, wait: float = 10) -> int:
    """Stop every rbtrace client attached to ``target`` (SIGINT, then SIGKILL plus removing the
    socket it leaves); how many there were. Idempotent: none attached is 0."""
    clients = tracer_clients(host, target)
    for pid in clients:
        signal(host, pid, "INT")
    deadline = time.monotonic() + wait
    while tracer_clients(host, target) and time.monotonic() < deadline:
        time.sleep(0.2)
    stuck = tracer_clients(host, target)
    for pid in stuck:
        signal(host, pid, "KILL")
    if stuck:
        host.run(["rm", "-f", "--", socket_path(target)], timeout=30)
    return len(clients)


def backtraces(host: Host, target: int, frames: int) -> str:
    """Every thread's backtrace in ``target`` (``rbtrace -b N``), ``frames`` frames each."""
    res = host.run(
        ["rbtrace", "-p", str(target), "--timeout", str(EVAL_TIMEOUT), "-b", str(frames)],
        timeout=EVAL_TIMEOUT * 3 + 10,
    )
    if not res.ok or "attached to process" not in res.stderr:
        raise RbtraceError(f"{host.label}: {explain(target, _said(res.stderr + res.stdout))}")
    return res.stdout.strip().strip('"')  # rbtrace prints the inspected string, quotes and all

"""User-supplied templates (overrides, previews) render in a few worker processes, bounded in time, CPU and memory.

Why processes: the in-process sandbox (core/templates.py) bounds loops, calls and the values a template builds,
but one filter call runs in C to its end: `([[0]*1500]*1500)|sum(start=[])` spends 15 s of CPU in a single call
and `(["x"*199999]*5000)|join` allocates a gigabyte, and while either runs no other request of the process is
served. Only another process can be stopped from outside. So each worker sets resource limits on itself
(RLIMIT_AS a fixed budget above its start-up size, RLIMIT_CPU per render as a backstop), and the event loop
awaits every render with a hard wall-clock timeout (never blocking), killing and replacing a worker that
overruns or dies. Workers are plain interpreters running `serve` (see `_Worker.start` for why not
multiprocessing.Process), started on first use, off the event loop.

A render that hits a limit fails with a `TemplateLimitError` naming the limit, and the page gets the shipped
default: trusted code rendered in-process, so a page never waits for or depends on the pool.

A batch is one round trip: its jobs go to a worker in one message and the worker answers each job as it
finishes, so a job that overruns fails alone. The jobs after it run again on a fresh worker, except those of
the same template, which fail the same way without another run. A template that hit a limit is remembered for
a while (`TRIPPED_SECONDS`): its pages fall back at once instead of each costing the timeout again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from core.templates import (
    EVERYWHERE,
    MEDIA,
    Rendered,
    Scope,
    TemplateLimitError,
    TemplateSet,
    failure,
    render_default,
    render_override,
)

TRIPPED_SECONDS = 600.0  # how long a template that hit a limit falls back without being run again
TRIPPED_MAX = 256  # templates remembered at most (a flood of distinct failing previews cannot grow it further)
STARTUP_SECONDS = 30.0  # a worker not ready by then is taken for broken


@dataclass(frozen=True)
class Limits:
    """What one render may use. The defaults leave an honest template (milliseconds, a few MB) far inside."""

    seconds: float = 2.0  # wall clock per render, enforced from the event loop by killing the worker
    cpu_seconds: int = 3  # CPU per render (RLIMIT_CPU): a backstop should the event loop itself be stalled
    memory_mb: int = 256  # address space a worker may grow by over its start-up size (RLIMIT_AS)
    workers: int = 2  # processes at most; renders beyond wait for a free one
    queue_seconds: float = 10.0  # how long a render waits for a free worker before it falls back


@dataclass(frozen=True)
class RenderJob:
    """One notification to render: the override's source (None: the shipped default) and its context."""

    medium: str
    event_type: str
    source: str | None
    context: Mapping[str, Any]


class TemplateSandbox:
    """The worker pool of one process (web or worker). Use from one event loop; `close` at shutdown."""

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self._idle: list[_Worker] = []
        self._free: asyncio.Semaphore | None = None  # made in the event loop that uses the pool
        self._tripped: dict[tuple[str, str], tuple[str, float]] = {}
        self._closed = False

    async def render(self, jobs: Sequence[RenderJob]) -> list[Rendered]:
        """Render every job; never raises. Jobs without a source render the shipped default in-process; the
        others go to one worker in one message, and each that fails renders the shipped default."""
        results: list[Rendered | None] = [None] * len(jobs)
        pending = list(range(len(jobs)))
        while pending:
            for i in pending:
                results[i] = self._settled(jobs[i])
            pending = [i for i in pending if results[i] is None]
            if pending:
                pending = await self._run(jobs, pending, results)
        return [r for r in results if r is not None]

    async def close(self) -> None:
        """Stop the workers: idle ones now, a busy one when the render holding it ends. Overrides rendered
        after this fall back to the shipped defaults."""
        self._closed = True
        idle, self._idle = self._idle, []
        for worker in idle:
            worker.conn.close()  # the worker reads end-of-file and exits
        await asyncio.gather(*(asyncio.to_thread(w.reap) for w in idle))

    def _settled(self, job: RenderJob) -> Rendered | None:
        """The result of a job that needs no worker (a shipped default, a tripped template), else None."""
        if job.source is None or job.medium not in MEDIA:
            return render_default(job.medium, job.event_type, job.context)
        hit = self._tripped.get(_key(job))
        if hit is None:
            return None
        error, until = hit
        if time.monotonic() > until:
            del self._tripped[_key(job)]
            return None
        return render_default(job.medium, job.event_type, job.context, error, hit_limit=True)

    async def _run(self, jobs: Sequence[RenderJob], pending: list[int], results: list[Rendered | None]) -> list[int]:
        """Send `pending` to one worker and fill in its answers; return the jobs that still need a worker."""
        worker = None if self._closed else await self._acquire()
        if worker is None:
            error = failure(TemplateLimitError("the template sandbox is shut down" if self._closed else
                                               f"no template worker was free within {self.limits.queue_seconds:g} s"
                                               " (the sandbox is busy)"))
            for i in pending:
                results[i] = render_default(jobs[i].medium, jobs[i].event_type, jobs[i].context, error,
                                            hit_limit=True)
            return []
        answered = 0
        try:
            if not worker.send([(jobs[i].medium, jobs[i].source, dict(jobs[i].context)) for i in pending]):
                # Died while idle (killed from outside): no job is to blame, none is tripped.
                error = failure(await worker.death())
                for i in pending:
                    results[i] = render_default(jobs[i].medium, jobs[i].event_type, jobs[i].context, error,
                                                hit_limit=True)
                return []
            for i in pending:
                answer = await worker.receive(self.limits.seconds)
                answered += 1
                if isinstance(answer, TemplateLimitError):
                    self._trip(jobs[i], failure(answer))
                    results[i] = render_default(jobs[i].medium, jobs[i].event_type, jobs[i].context,
                                                failure(answer), hit_limit=True)
                    if worker.dead:
                        break  # it overran or died on this job: the jobs after it go to another worker
                    continue
                results[i] = answer if isinstance(answer, Rendered) else \
                    render_default(jobs[i].medium, jobs[i].event_type, jobs[i].context, answer)
        finally:
            # A worker left with answers unread (the caller was cancelled mid-batch) cannot serve again.
            await self._release(worker, reusable=answered == len(pending) and not worker.dead)
        return pending[answered:]

    async def _acquire(self) -> _Worker | None:
        """A live worker (idle, else a new one) within `queue_seconds`, else None."""
        if self._free is None:
            self._free = asyncio.Semaphore(self.limits.workers)
        try:
            await asyncio.wait_for(self._free.acquire(), self.limits.queue_seconds)
        except TimeoutError:
            return None
        while self._idle:
            worker = self._idle.pop()
            if worker.process.poll() is None:
                return worker
            worker.kill()  # died while idle (killed from outside), and reaped by poll()
        try:
            # An interpreter's start takes a few hundred ms: never on the event loop.
            return await asyncio.to_thread(_Worker.start, self.limits)
        except BaseException:
            self._free.release()
            raise

    async def _release(self, worker: _Worker, *, reusable: bool) -> None:
        assert self._free is not None
        self._free.release()  # first: a cancellation below must not lose the slot
        if reusable and not self._closed:
            self._idle.append(worker)
        else:
            await self._discard(worker)

    @staticmethod
    async def _discard(worker: _Worker) -> None:
        worker.kill()
        await asyncio.to_thread(worker.reap)

    def _trip(self, job: RenderJob, error: str) -> None:
        if len(self._tripped) >= TRIPPED_MAX:
            self._tripped.pop(next(iter(self._tripped)))  # the oldest
        self._tripped[_key(job)] = (error, time.monotonic() + TRIPPED_SECONDS)


def _key(job: RenderJob) -> tuple[str, str]:
    return job.medium, job.source or ""


async def render_all(sandbox: TemplateSandbox | None, templates: TemplateSet,
                     requests: Sequence[tuple[str, str, Mapping[str, Any]]
                                       | tuple[str, str, Mapping[str, Any], Scope]]) -> list[Rendered]:
    """Render (medium, event_type, context[, scope]) requests: `templates`' overrides for the scope (default:
    everywhere) in the sandbox, the shipped defaults in-process. Without a sandbox an override is never run
    here: its page gets the default."""
    jobs = []
    for medium, event_type, context, *scoped in requests:
        where = scoped[0] if scoped else EVERYWHERE
        source = templates.source(medium, event_type, where.channel_id, where.rule_id) if medium in MEDIA else None
        jobs.append(RenderJob(medium, event_type, source, context))
    if sandbox is None:
        return [render_default(j.medium, j.event_type, j.context,
                               None if j.source is None else "no template sandbox in this process") for j in jobs]
    return await sandbox.render(jobs)


# -- the worker process ---------------------------------------------------------------------------------


class _Worker:
    """One worker process seen from the event loop: the process and the parent's end of its pipe."""

    def __init__(self, process: subprocess.Popen[bytes], conn: Connection, limits: Limits) -> None:
        self.process, self.conn, self.limits = process, conn, limits
        self.dead = False

    @classmethod
    def start(cls, limits: Limits) -> _Worker:
        """Start a worker and wait until its limits are in place (blocking: call it off the event loop)."""
        ours, theirs = multiprocessing.Pipe()  # a socket pair: one connection both ways
        # A plain interpreter that imports only this module, not multiprocessing.Process: spawn, and on
        # Python 3.11 forkserver too (cpython gh-126631), import the parent's main script in every worker
        # (`vigil`, pytest: a second or more), and fork would copy a threaded server.
        process = subprocess.Popen(
            [sys.executable, "-c", f"from {__name__} import serve; serve()", str(theirs.fileno()),
             str(limits.cpu_seconds), str(limits.memory_mb)],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=_worker_env())
        theirs.close()
        # Only then does a render's time start: it is spent rendering, not starting up.
        if not ours.poll(STARTUP_SECONDS) or _decode(ours.recv_bytes(ANSWER_MAX_BYTES)) != _READY:
            process.kill()
            process.wait()
            ours.close()
            raise RuntimeError(f"a template worker did not start within {STARTUP_SECONDS:g} s")
        return cls(process, ours, limits)

    def send(self, batch: list[tuple[str, str | None, dict[str, Any]]]) -> bool:
        """Hand the worker a batch (False: it is dead). It is idle and reading, so even a large batch drains
        at once."""
        try:
            self.conn.send(batch)
        except OSError:
            self.kill()
            return False
        return True

    async def receive(self, seconds: float) -> Rendered | str | TemplateLimitError:
        """The worker's next answer within `seconds`, or a TemplateLimitError (the worker is then dead)."""
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = self.conn.fileno()
        loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await asyncio.wait_for(ready, seconds)
        except TimeoutError:
            self.kill()
            return TemplateLimitError(f"rendering took longer than the {seconds:g} s time limit")
        finally:
            loop.remove_reader(fd)
        try:
            # Readable: the worker is writing its whole answer (at most a medium's output cap) in one send.
            answer = _decode(self.conn.recv_bytes(ANSWER_MAX_BYTES))
        except (EOFError, OSError, ValueError):  # ValueError: not an answer a worker writes
            self.kill()
            return await self.death()
        if answer == _MEMORY:  # the worker freed what it had built and carries on
            return TemplateLimitError(f"rendering needed more than the {self.limits.memory_mb} MB memory limit")
        return answer

    async def death(self) -> TemplateLimitError:
        """Why the worker is gone, from its exit status."""
        await asyncio.to_thread(self.reap)
        code = self.process.returncode
        if code == -signal.SIGXCPU:
            return TemplateLimitError(f"rendering used more than the {self.limits.cpu_seconds} s CPU time limit")
        if code == -signal.SIGKILL:
            return TemplateLimitError("the template worker was killed (out of memory?)")
        return TemplateLimitError(f"the template worker died (exit code {code})")

    def kill(self) -> None:
        self.dead = True
        self.process.kill()  # a no-op once it has been reaped
        self.conn.close()

    def reap(self) -> None:
        """Wait for the process to end (blocking: call it off the event loop)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


def _worker_env() -> dict[str, str]:
    """The worker's environment: where to import from, and nothing else (no database URL, token or secret
    for a template that escaped the sandbox to find)."""
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL") if k in os.environ}
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


# Answers come back as JSON, never pickle: a template that escaped the sandbox runs inside the worker, and a
# pickle from it would run code in the server. recv_bytes' cap also bounds what a worker can make us read.
ANSWER_MAX_BYTES = 1024 * 1024
FAILURE_MAX_CHARS = 500  # a failure's text lands on the timeline and in the log: e.g. a 200 KB tz name must not


def _encode(answer: Rendered | str) -> bytes:
    if isinstance(answer, Rendered):
        return json.dumps({"rendered": [answer.subject, answer.text, answer.html]}).encode()
    return json.dumps({"text": answer[:FAILURE_MAX_CHARS]}).encode()


def _decode(data: bytes) -> Rendered | str:
    """A worker's answer; ValueError for anything else."""
    message = json.loads(data)
    if isinstance(message, dict) and isinstance(message.get("text"), str):
        return message["text"]
    parts = message.get("rendered") if isinstance(message, dict) else None
    if isinstance(parts, list) and len(parts) == 3 and isinstance(parts[1], str) \
            and all(p is None or isinstance(p, str) for p in parts):
        return Rendered(parts[0], parts[1], parts[2])
    raise ValueError("not a template worker's answer")


_READY = "__vigil_ready__"  # the worker's first message: its limits are set
_MEMORY = "__vigil_memory_limit__"  # the worker's answer when a render ran out of its address space


def serve() -> None:
    """A worker process's main (argv: its connection's file descriptor, CPU seconds per render, memory MB):
    set the limits, then read batches and answer each job (Rendered, or the failure's text) as it finishes."""
    fd, cpu_seconds, memory_mb = (int(a) for a in sys.argv[1:4])
    conn = Connection(fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    logging.getLogger("vigil.templates").disabled = True  # the parent logs each fallback, once
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU dumps core by default
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + memory_mb * 2**20, hard))
    conn.send_bytes(_encode(_READY))
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return  # the parent closed the pool or is gone
        for medium, source, context in batch:
            _cpu_budget(cpu_seconds)
            try:
                answer: Rendered | str = render_override(medium, source, context)
            except MemoryError:
                answer = _MEMORY
            except Exception as exc:  # the template's own failure: the parent renders the default
                answer = failure(exc)
            conn.send_bytes(_encode(answer))


def _address_space() -> int:
    """This process's current virtual size in bytes (the memory limit is counted from here)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _cpu_budget(seconds: int) -> None:
    """Let the next render use `seconds` more CPU before the kernel stops the worker (SIGXCPU)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(usage.ru_utime + usage.ru_stime) + seconds + 1
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


__all__ = ["Limits", "RenderJob", "TemplateSandbox", "render_all", "serve"]

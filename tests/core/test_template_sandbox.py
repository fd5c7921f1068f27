"""The template sandbox with real worker processes: a template that would stall or bloat the process is cut at
its limit, the event loop keeps running meanwhile, and the page falls back to the shipped default."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import time
from pathlib import Path

import pytest

from core.template_sandbox import Limits, RenderJob, TemplateSandbox, render_all
from core.templates import Rendered, TemplateSet, incident_context, render_default

SUM = "{{ ([[0]*1500]*1500)|sum(start=[])|length }}"  # one C call: ~15 s of CPU
JOIN = '{{ (["x"*199999]*5000)|join }}'  # one C call: a 1 GB string
CTX = incident_context({"incident_id": 7, "title": "db-1 down", "incident_severity": "Critical"},
                       event_type="i_new", base_url="https://vigil.example")
DEFAULT = render_default("sms", "i_new", CTX).text
FAST = Limits(seconds=0.5)


def job(source: str | None, medium: str = "sms") -> RenderJob:
    return RenderJob(medium, "i_new", source, CTX)


def workers() -> list[int]:
    """The pids of this process's template workers, as `ps` would show them."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == os.getpid() and b"core.template_sandbox" in cmdline:
            found.append(int(stat.parent.name))
    return found


@pytest.fixture
async def sandbox():
    box = TemplateSandbox(FAST)
    yield box
    await box.close()


async def lag_while(coro) -> tuple[object, float]:
    """Run `coro`, and meanwhile measure the longest the event loop was late for a 20 ms tick."""
    worst = 0.0
    done = asyncio.Event()

    async def tick() -> None:
        nonlocal worst
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.02)
            worst = max(worst, time.perf_counter() - start - 0.02)

    ticker = asyncio.create_task(tick())
    try:
        return await coro, worst
    finally:
        done.set()
        await ticker


@pytest.mark.parametrize("limits, source, error", [
    (FAST, SUM, "TemplateLimitError: rendering took longer than the 0.5 s time limit"),
    (FAST, JOIN, "TemplateLimitError: rendering needed more than the 256 MB memory limit"),
    (Limits(seconds=60, cpu_seconds=1), SUM, "TemplateLimitError: rendering used more than the 1 s CPU time limit"),
])
async def test_a_limit_cuts_the_render_and_the_page_gets_the_default(limits, source, error):
    box = TemplateSandbox(limits)
    try:
        [r], lag = await lag_while(box.render([job(source)]))
    finally:
        await box.close()
    assert (r.text, r.used_fallback, r.hit_limit, r.error) == (DEFAULT, True, True, error)
    assert lag < 0.25, f"the event loop stalled for {lag:.2f} s"


@pytest.mark.parametrize("source, text, error", [
    ("PAGE {{ title }}", "PAGE db-1 down", None),
    ("{{ 1/0 }}", DEFAULT, "ZeroDivisionError: division by zero"),
    ("{{ ''.__class__ }}", DEFAULT, "SecurityError: access to attribute '__class__' of 'str' object is unsafe"),
    ("{% if %}", DEFAULT, "TemplateError: line 1: Expected an expression, got 'end of statement block'"),
    (None, DEFAULT, None),
])
async def test_ordinary_outcomes_are_as_in_process(sandbox, source, text, error):
    [r] = await sandbox.render([job(source)])
    assert (r.text, r.used_fallback, r.error, r.hit_limit) == (text, error is not None, error, False)


async def test_a_batch_is_one_round_trip_and_a_bad_template_fails_alone():
    sandbox = TemplateSandbox(Limits(seconds=2.0))  # two timeouts would take 4 s, far more than a worker's start
    start = time.monotonic()
    try:
        results = await sandbox.render([job("A {{ num }}"), job(SUM), job("B {{ title }}"), job(SUM), job(None),
                                        job(JOIN, "im"), job("C")])
    finally:
        await sandbox.close()
    elapsed = time.monotonic() - start
    assert [r.text if not r.used_fallback else "default" for r in results] == \
        ["A 7", "default", "B db-1 down", "default", DEFAULT, "default", "C"]
    assert [r.hit_limit for r in results] == [False, True, False, True, False, True, False]
    assert "time limit" in results[1].error and results[1].error == results[3].error
    assert "memory limit" in results[5].error
    # The second copy of the stalling template was not run again: one timeout, not two.
    assert elapsed < 2 * sandbox.limits.seconds, elapsed


async def test_a_template_that_hit_a_limit_falls_back_at_once_afterwards(sandbox):
    await sandbox.render([job(SUM)])
    start = time.monotonic()
    [again] = await sandbox.render([job(SUM)])
    assert again.hit_limit and "time limit" in again.error and time.monotonic() - start < 0.1
    [other] = await sandbox.render([job("still fine")])  # other templates are not affected
    assert other.text == "still fine"


async def test_a_worker_killed_from_outside_is_replaced(sandbox):
    await sandbox.render([job("warm")])
    [worker] = workers()
    os.kill(worker, signal.SIGKILL)
    await asyncio.sleep(0.1)
    [r] = await sandbox.render([job("after {{ num }}")])
    assert (r.text, r.used_fallback) == ("after 7", False)
    assert len(workers()) == 1 and workers() != [worker]


async def test_a_full_pool_makes_later_renders_fall_back_instead_of_waiting_forever():
    box = TemplateSandbox(Limits(seconds=1.0, workers=1, queue_seconds=0.2))
    try:
        stalled = asyncio.create_task(box.render([job(SUM)]))
        await asyncio.sleep(0.05)
        [waiting] = await box.render([job("fine")])
        assert waiting.hit_limit and "no template worker was free within 0.2 s" in waiting.error
        assert waiting.text == DEFAULT
        [cut] = await stalled
        assert "time limit" in cut.error
        [later] = await box.render([job("fine")])
        assert later.text == "fine"
    finally:
        await box.close()


async def test_a_caller_cancelled_midway_loses_neither_the_slot_nor_the_order_of_answers():
    box = TemplateSandbox(Limits(seconds=10, workers=1, queue_seconds=5))
    try:
        task = asyncio.create_task(box.render([job("first"), job(SUM)]))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        [r] = await box.render([job("next {{ num }}")])
        assert (r.text, r.used_fallback) == ("next 7", False)
    finally:
        await box.close()


async def test_close_stops_the_workers():
    box = TemplateSandbox(FAST)
    await box.render([job("a"), job("b")])
    assert len(workers()) == 1
    await box.close()
    assert workers() == []


async def test_render_all_runs_overrides_in_the_sandbox_and_defaults_here(sandbox):
    templates = TemplateSet({("sms", "i_new"): SUM, ("email", "default"): "x"})
    sms, voice = await render_all(sandbox, templates, [("sms", "i_new", CTX), ("voice", "i_new", CTX)])
    assert sms.hit_limit and sms.text == DEFAULT
    assert not voice.used_fallback and voice.text == render_default("voice", "i_new", CTX).text
    [unsandboxed] = await render_all(None, templates, [("sms", "i_new", CTX)])
    assert unsandboxed.text == DEFAULT and unsandboxed.error == "no template sandbox in this process"


@pytest.mark.parametrize("data", [
    pickle.dumps(Rendered("s", "t", None)),  # a pickle never reaches pickle.loads in the server
    b'{"rendered": ["s", 1, null]}',
    b'{"rendered": ["s", "t"]}',
    b'["text", "x"]',
    b"not json",
])
def test_the_server_reads_only_plain_answers_from_a_worker(data):
    from core.template_sandbox import _decode

    with pytest.raises(ValueError):
        _decode(data)


def test_answers_round_trip_and_failures_are_capped():
    from core.template_sandbox import FAILURE_MAX_CHARS, _decode, _encode

    assert _decode(_encode(Rendered("subject", "text", "<p>html</p>"))) == Rendered("subject", "text", "<p>html</p>")
    assert _decode(_encode("ValueError: unknown time zone " + "x" * 199_999)) == \
        ("ValueError: unknown time zone " + "x" * 199_999)[:FAILURE_MAX_CHARS]

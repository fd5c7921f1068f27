"""Click round-trip benchmark against the Slack fake: signed callback in -> Slack answered, and -> every
card of the incident updated (card sync's chat.update), at a steady click rate.

Targets (issue 4): p99 < 300 ms to answer and < 1 s to update every card, at 50 clicks/s.

    uv run python bench/clicks.py [--clicks 300] [--rate 50]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import free_port  # noqa: E402
from tests.fakes.slack import FakeSlack, block_actions, button, signed_headers  # noqa: E402

SIGNING, TOKEN, ANN = "bench-signing-secret", "xoxb-bench-token", "U0ANN0001"


class TimedSlack(FakeSlack):
    """The Slack fake, noting when each message was updated."""

    updated_at: dict[tuple[str, str], float]

    def _update(self, args):  # type: ignore[no-untyped-def]
        self.updated_at.setdefault((args.get("channel"), args.get("ts")), time.perf_counter())
        return super()._update(args)


async def serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def pct(v: list[float], p: int) -> float:
    return statistics.quantiles(v, n=100)[p - 1] * 1000 if len(v) > 1 else float("nan")


async def main(n: int, rate: float) -> None:
    from bot.server import create_app
    from core.settings import Settings

    fake = TimedSlack(bot_token=TOKEN, users={ANN: "ann@example.com"})
    fake.updated_at = {}
    slack_port, vigil_port = free_port(), free_port()
    slack_runner = await serve(fake.app(), slack_port)
    with tempfile.TemporaryDirectory() as d:
        settings = Settings(database_url=f"sqlite:///{d}/b.db", secret_key="bench", egress_allow=["127.0.0.1"],
                            admin_token="bench-admin-token-0123456789abcdef",
                            base_url=f"http://127.0.0.1:{vigil_port}", ingest_rate_per_second=100000,
                            ingest_rate_per_minute=10**8)
        vigil_runner = await serve(create_app(settings), vigil_port)
        base = f"http://127.0.0.1:{vigil_port}"
        hdr = {"Authorization": "Bearer bench"}
        async with aiohttp.ClientSession(headers=hdr) as s:
            async def call(method, path, body=None):  # type: ignore[no-untyped-def]
                async with s.request(method, base + "/api/v1" + path, json=body) as r:
                    return (await r.json())["data"]

            await call("POST", "/im-apps", {"platform": "slack", "name": "b",
                                           "settings": {"base_url": f"http://127.0.0.1:{slack_port}"},
                                           "secrets": {"bot_token": TOKEN, "signing_secret": SIGNING}})
            ann = await call("POST", "/members", {"name": "Ann", "email": "ann@example.com"})
            await call("POST", "/mapping-tables/slack/rows", {"member_id": ann["member_id"], "im_user_id": ANN})
            ch = await call("POST", "/channels", {"name": "bench"})
            integ = await call("POST", f"/channels/{ch['channel_id']}/integrations", {"type": "standard", "name": "b"})
            await call("POST", f"/channels/{ch['channel_id']}/escalation-rules", {"name": "r", "levels": [
                {"targets": {"member_ids": [ann["member_id"]]}, "media": ["im"]}]})
            for i in range(n):
                async with s.post(integ["push_url"], json={"event_status": "Critical", "title_rule": f"t{i}",
                                                           "alert_key": f"k{i}"}) as r:
                    await r.read()
            deadline = time.perf_counter() + 120
            while len(fake.calls("chat.postMessage")) < n and time.perf_counter() < deadline:
                await asyncio.sleep(0.2)
            cards = {}  # ack payload -> (channel, ts); the fake stores messages in the order they were posted
            for call_, (channel, ts) in zip(fake.calls("chat.postMessage"), list(fake.messages), strict=False):
                m = re.search(r"ack:\d+", str(call_.args))
                if m:
                    cards[m.group(0)] = (channel, ts)
            print(f"{len(cards)} cards posted; clicking at {rate:g}/s")
            answer: list[float] = []
            updated: list[float] = []
            sent_at: dict[tuple[str, str], float] = {}

            async def click(payload: str, channel: str, ts: str) -> None:
                body = block_actions(ANN, button("vigil.ack", payload), channel=channel, ts=ts,
                                     response_url=f"http://127.0.0.1:{slack_port}/response/x")
                t0 = time.perf_counter()
                sent_at[(channel, ts)] = t0
                async with s.post(base + "/im/slack/callback", data=body, headers=signed_headers(
                        SIGNING, body, int(datetime.now(UTC).timestamp()))) as r:
                    await r.read()
                answer.append(time.perf_counter() - t0)

            tasks = []
            start = time.perf_counter()
            for i, (payload, (channel, ts)) in enumerate(list(cards.items())[:n]):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(click(payload, channel, ts)))
            await asyncio.gather(*tasks)
            await asyncio.sleep(3)
            for key, t0 in sent_at.items():
                if key in fake.updated_at:
                    updated.append(fake.updated_at[key] - t0)
        print(f"answered : p50 {pct(answer, 50):6.1f} ms  p99 {pct(answer, 99):6.1f} ms  ({len(answer)} clicks)")
        print(f"updated  : p50 {pct(updated, 50):6.1f} ms  p99 {pct(updated, 99):6.1f} ms  "
              f"({len(updated)} of {len(sent_at)} cards updated by card sync)")
        await vigil_runner.cleanup()
    await slack_runner.cleanup()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--clicks", type=int, default=300)
    ap.add_argument("--rate", type=float, default=50)
    a = ap.parse_args()
    asyncio.run(main(a.clicks, a.rate))

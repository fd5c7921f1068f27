"""An HTTP SMS gateway sink for the paging benchmarks, run as its own process (its CPU is not the bench's).

    python bench/_sms_sink.py --port P --control-port C

`POST /sms?ref=...` with JSON `{"to": "+1555...", "text": "..."}` is one SMS. The sink records, for every
request, its receive time (time.time(), the same clock the bench stamps pushes with), the bench token
found in the text (the alert it belongs to), the phone number, the `ref` query value and the status it
answered. A healthy answer is `{"status": "ok", "id": "sink-N"}` (an accepted SMS).

Like gateways that honour an `Idempotency-Key` header, a healthy sink answers a key it already accepted
with that SMS's id and sends nothing (recorded with status 208, so a re-sent page is visible but is not
a second SMS). Vigil gives every attempt of one delivery the same key.

The control port (never faulted) sets the mode and reads the records:

    POST /mode?m=ok|500|429|down   ok; 500 Internal Server Error; 429 with Retry-After: 1;
                                   down = stop listening (connection refused) and drop open connections
    GET  /records?since=N          {"records": [...from index N], "modes": [[t, mode], ...], "next": M}
    POST /reset                    forget the records
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import time

from aiohttp import web

TOKEN = re.compile(r"\bpg-[0-9a-z]+-\d+\b")
MODES = ("ok", "500", "429", "down")


class Sink:
    def __init__(self, port: int) -> None:
        self.port = port
        self.mode = "ok"
        self.records: list[list] = []  # [t, token, to, ref, status, id given]
        self.modes: list[list] = [[time.time(), "ok"]]
        self.runner: web.AppRunner | None = None
        self.site: web.TCPSite | None = None
        self.n = 0
        self.accepted: dict[str, str] = {}  # idempotency key -> id given

    async def sms(self, request: web.Request) -> web.StreamResponse:
        t = time.time()
        body = await request.read()
        try:
            doc = json.loads(body)
            text, to = str(doc.get("text", "")), str(doc.get("to", ""))
        except ValueError:
            text, to = body.decode("utf-8", "replace"), ""
        m = TOKEN.search(text)
        mode = self.mode
        status = {"ok": 200, "500": 500, "429": 429, "down": 0}[mode]
        record = [t, m.group(0) if m else "", to, request.query.get("ref", ""), status, ""]
        self.records.append(record)
        if mode == "down":  # a request on a connection that outlived the switch: drop it unanswered
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=503)
        if mode == "500":
            return web.json_response({"status": "error", "error": "internal"}, status=500)
        if mode == "429":
            return web.json_response({"status": "error", "error": "slow down"}, status=429,
                                     headers={"Retry-After": "1"})
        key = request.headers.get("Idempotency-Key", "")
        if key and key in self.accepted:
            record[4], record[5] = 208, self.accepted[key]  # already sent: the same answer, no second SMS
            return web.json_response({"status": "ok", "id": record[5]})
        self.n += 1
        record[5] = f"sink-{self.n}"
        if key:
            self.accepted[key] = record[5]
        return web.json_response({"status": "ok", "id": record[5]})

    async def start_listening(self) -> None:
        assert self.runner is not None
        self.site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True, backlog=1024)
        await self.site.start()

    async def stop_listening(self) -> None:
        if self.site is not None:
            await self.site.stop()
            self.site = None
        assert self.runner is not None and self.runner.server is not None
        for handler in self.runner.server.connections:  # keep-alive connections would still be served
            handler.force_close()

    async def set_mode(self, request: web.Request) -> web.Response:
        mode = request.query.get("m", "")
        if mode not in MODES:
            return web.json_response({"error": f"mode must be one of {MODES}"}, status=400)
        if mode == "down" and self.mode != "down":
            self.mode = mode
            await self.stop_listening()
        elif mode != "down" and self.mode == "down":
            await self.start_listening()
        self.mode = mode
        self.modes.append([time.time(), mode])
        return web.json_response({"mode": mode, "t": self.modes[-1][0]})

    async def get_records(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        return web.json_response({"records": self.records[since:], "modes": self.modes, "next": len(self.records),
                                  "mode": self.mode})

    async def reset(self, _request: web.Request) -> web.Response:
        self.records.clear()
        self.accepted.clear()
        self.modes = [[time.time(), self.mode]]
        return web.json_response({"ok": True})


async def run(port: int, control_port: int) -> None:
    sink = Sink(port)
    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/sms", sink.sms)
    sink.runner = web.AppRunner(app, access_log=None)
    await sink.runner.setup()
    await sink.start_listening()

    control = web.Application()
    control.router.add_post("/mode", sink.set_mode)
    control.router.add_get("/records", sink.get_records)
    control.router.add_post("/reset", sink.reset)
    crunner = web.AppRunner(control, access_log=None)
    await crunner.setup()
    await web.TCPSite(crunner, "127.0.0.1", control_port).start()
    print(f"sms sink on {port}, control on {control_port} (pid {os.getpid()})", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--control-port", type=int, required=True)
    args = ap.parse_args()
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    with contextlib.suppress(KeyboardInterrupt):
        loop.run_until_complete(run(args.port, args.control_port))


if __name__ == "__main__":
    main()

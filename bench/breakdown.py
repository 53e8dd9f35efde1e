"""Where the webhook's CPU goes, stage by stage, measured in-process (no HTTP server, no load generator).
Run by hand next to bench/webhook.py, whose `srv cpu ms/msg` is the total these stages add up to.

    .venv/bin/python bench/breakdown.py                        # SQLite + memory://
    .venv/bin/python bench/breakdown.py --database-url postgresql://root@127.0.0.1:5432/wxbot_bench \\
        --redis-url redis://127.0.0.1:6379/14

Each stage runs sequentially on fresh `帮助` messages (unique MsgId, members in turn) and reports the CPU
time of this process per call (time.process_time), the lowest of --repeat rounds so that other work on
the machine inflates it as little as possible. Outer stages include the inner ones.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response
from starlette.applications import Starlette
from starlette.routing import Route

from bench import bare_app
from bot.app import create_app
from bot.inbound.parse import build_inbound
from bot.inbound.render import render
from bot.inbound.webhook import check_signature, open_body
from bot.migrate import upgrade
from bot.settings import Settings, new_pii_key
from devtools.simclient import WeChatSide
from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.message import OFFICIAL_ACCOUNT
from handlers.core.reply import Text
from storage.kv import KV

TOKEN = "wxbot-bench-token"
Request_ = tuple[dict[str, str], bytes]
Rows = dict[str, float]


class Messages:
    """Signed `帮助` pushes, each with a fresh MsgId, from `openids` members in turn."""

    def __init__(self, openids: int) -> None:
        self.side = WeChatSide(TOKEN)
        tag = secrets.token_hex(3)
        self.openids = [f"oBREAK{tag}{i:016d}" for i in range(openids)]
        self.n = 0

    def batch(self, count: int) -> list[Request_]:
        out = []
        for _ in range(count):
            self.n += 1
            push = self.side.sign(self.side.text(self.openids[self.n % len(self.openids)], "帮助"))
            out.append((push.params, push.body))
        return out


async def per_call(count: int, step: Callable[[int], Awaitable[Any]]) -> float:
    """CPU microseconds per call of `step(i)`; inputs are built before the clock starts."""
    started = time.process_time()
    for i in range(count):
        await step(i)
    return (time.process_time() - started) / count * 1e6


def sync(fn: Callable[[int], Any]) -> Callable[[int], Awaitable[Any]]:
    async def step(i: int) -> Any:
        return fn(i)

    return step


async def asgi_call(app: Any, params: dict[str, str], body: bytes) -> None:
    """One POST /wechat straight into an ASGI app, the way uvicorn would hand it over."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/wechat", "raw_path": b"/wechat", "root_path": "",
        "query_string": urlencode(params).encode(), "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000), "state": {},
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"text/xml"),
                    (b"content-length", str(len(body)).encode())],
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    if status != 200:
        raise RuntimeError(f"HTTP {status}")


class FixedReply:
    """Stands in for ChatPipeline to measure the edge (FastAPI, body, signature, parse, seal) alone."""

    def __init__(self, body: str) -> None:
        self.body = body

    async def process(self, msg: Any, started: float | None = None) -> str:
        return self.body


def minimal_fastapi() -> FastAPI:
    """The framework alone: a FastAPI POST route that reads the body and answers fixed bytes."""
    app = FastAPI()

    @app.post("/wechat")
    async def wechat(request: Request) -> Response:
        await request.body()
        return Response(bare_app.REPLY, media_type="application/xml")

    return app


def minimal_starlette() -> Starlette:
    async def wechat(request: Any) -> Response:
        await request.body()
        return Response(bare_app.REPLY, media_type="application/xml")

    return Starlette(routes=[Route("/wechat", wechat, methods=["POST"])])


async def kv_ops(url: str, count: int) -> Rows:
    kv = KV(url)
    value = "x" * 700  # about the size of a stored help reply
    prefix = f"wxbot:bench:{secrets.token_hex(3)}"
    three = "for i = 1, 3 do redis.call('set', KEYS[i], ARGV[1], 'PX', 60000, 'NX') end return 1"
    script = kv.redis.register_script(three)

    async def lock(i: int) -> None:
        async with kv.lock(f"{prefix}:lock:{i}", ttl=14, wait=4):
            pass

    async def pipelined(i: int) -> None:
        async with kv.redis.pipeline(transaction=False) as pipe:
            for j in range(3):
                pipe.set(f"{prefix}:p{j}:{i}", value, px=60000, nx=True)
            await pipe.execute()

    async def scripted(i: int) -> None:
        await script(keys=[f"{prefix}:s{j}:{i}" for j in range(3)], args=[value])

    try:
        return {
            "SET NX PX (700 B value)": await per_call(
                count, lambda i: kv.set(f"{prefix}:{i}", value, ex=60, nx=True)
            ),
            "GET": await per_call(count, lambda i: kv.get(f"{prefix}:{i}")),
            "DEL": await per_call(count, lambda i: kv.delete(f"{prefix}:{i}")),
            "KV.lock acquire + release (SET NX PX, DEL)": await per_call(count, lock),
            "3 x SET NX PX in one pipeline (one round trip)": await per_call(count, pipelined),
            "3 x SET NX PX in one Lua script (EVALSHA)": await per_call(count, scripted),
        }
    finally:
        await kv.delete(*[f"{prefix}:{k}{i}" for k in ("", "p0:", "p1:", "p2:") for i in range(count)])
        await kv.close()


async def stages(settings: Settings, count: int, openids: int) -> Rows:
    app = create_app(settings)
    messages = Messages(openids)
    rows: Rows = {}
    async with app.router.lifespan_context(app):
        endpoint, clock, pipeline = app.state.oa_endpoint, app.state.clock, app.state.pipeline

        def inbound(request: Request_) -> Any:
            check_signature(endpoint, clock, request[0])
            fields, _, _ = open_body(endpoint, request[0], request[1])
            return build_inbound(OFFICIAL_ACCOUNT, fields, clock.now())

        async def conversation(msg: Any) -> None:
            ctx = ChatContext(msg, pipeline.services, logging.LoggerAdapter(logging.getLogger("bench")))
            await pipeline.conversation.handle(msg, ctx)

        async def deadline(i: int) -> None:  # what pipeline.process wraps each handler in
            async def nothing() -> None:
                return None

            await asyncio.wait_for(asyncio.shield(asyncio.create_task(nothing())), 4.0)

        warm = messages.batch(max(count, openids))  # first contact of every member, caches, pools
        await per_call(len(warm), lambda i: asgi_call(app, *warm[i]))

        reqs = messages.batch(count)
        rows["signature check + parse XML + build Inbound"] = await per_call(
            count, sync(lambda i: inbound(reqs[i]))
        )
        rows["render the help reply (wechatpy TextReply)"] = await per_call(
            count, sync(lambda i: render(Text(texts.HELP_MEMBER), account="gh", openid="o", now=i, is_event=False))
        )
        rows["deadline: create_task + shield + wait_for"] = await per_call(count, deadline)
        msgs = [inbound(r) for r in messages.batch(count)]
        rows["conversation.handle (lock, flow state GET, router, unlock)"] = await per_call(
            count, lambda i: conversation(msgs[i])
        )
        msgs = [inbound(r) for r in messages.batch(count)]
        rows["pipeline.process (+ dedupe claim/replied, touch, deadline, render)"] = await per_call(
            count, lambda i: pipeline.process(msgs[i])
        )
        reqs = messages.batch(count)
        rows["wxbot app, whole request (ASGI call, no HTTP)"] = await per_call(
            count, lambda i: asgi_call(app, *reqs[i])
        )
        help_xml = render(Text(texts.HELP_MEMBER), account="gh", openid="o", now=1, is_event=False)
        app.state.pipeline = FixedReply(help_xml)
        reqs = messages.batch(count)
        rows["wxbot app with pipeline.process stubbed out (the edge alone)"] = await per_call(
            count, lambda i: asgi_call(app, *reqs[i])
        )
        app.state.pipeline = pipeline
    for name, baseline in (
        ("minimal FastAPI POST route (reads body, fixed reply)", minimal_fastapi()),
        ("minimal Starlette POST route (reads body, fixed reply)", minimal_starlette()),
        ("bare ASGI app (bench/bare_app.py)", bare_app.app),
    ):
        reqs = messages.batch(count)
        rows[name] = await per_call(count, lambda i, app=baseline, reqs=reqs: asgi_call(app, *reqs[i]))
    return rows


def lowest(rounds: list[Rows]) -> Rows:
    return {name: min(r[name] for r in rounds) for name in rounds[0]}


def report(title: str, rows: Rows) -> None:
    print(f"\n{title}")
    for name, micros in rows.items():
        print(f"  {name:<68} {micros:8.1f} us")


async def main_async(args: argparse.Namespace, tmp: Path) -> None:
    database_url = args.database_url or f"sqlite:///{tmp / 'breakdown.db'}"
    await upgrade(database_url)
    settings = Settings(
        wechat_token=TOKEN, wechat_appsecret="", wechat_appid="", wechat_aes_key="",
        database_url=database_url, redis_url=args.redis_url, admin_token=secrets.token_urlsafe(24),
        pii_key=new_pii_key(), log_level="WARNING",
    )
    kv_rounds = [await kv_ops(args.redis_url, args.count) for _ in range(args.repeat)]
    report(f"KV operations on {args.redis_url}, CPU per call", lowest(kv_rounds))
    stage_rounds = [await stages(settings, args.count, args.openids) for _ in range(args.repeat)]
    db, kv = database_url.split(":")[0], args.redis_url.split(":")[0]
    report(f"stages on {db} + {kv}, CPU per message (outer stages include inner ones)", lowest(stage_rounds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="", help="default: a SQLite file in a temporary directory")
    parser.add_argument("--redis-url", default="memory://breakdown", help="default: memory://")
    parser.add_argument("--count", type=int, default=3000, help="calls per stage and round (default 3000)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the lowest is shown (default 3)")
    parser.add_argument("--openids", type=int, default=256, help="distinct members, used in turn")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    bare_app.TOKEN = TOKEN
    tmp = Path(tempfile.mkdtemp(prefix="wxbot-breakdown-"))
    cwd = Path.cwd()
    os.chdir(tmp)  # no .env is read and no var/ is written in the repository
    try:
        try:
            import uvloop
        except ImportError:
            asyncio.run(main_async(args, tmp))
        else:
            uvloop.run(main_async(args, tmp))
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

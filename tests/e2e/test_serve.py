"""`wxbot serve` as operators run it: its own process, uvicorn, the production app factory (which also
freezes start-up objects out of the garbage collector), answering WeChat over a real socket."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.settings import new_pii_key
from devtools.simclient import WeChatSide
from handlers import texts

WXBOT = Path(sys.executable).parent / "wxbot"
TOKEN = "serve-test-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "MINIPROGRAM_"))}
    env.update(
        WECHAT_TOKEN=TOKEN, WECHAT_APPSECRET="", DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
        REDIS_URL=f"memory://serve-{secrets.token_hex(4)}", ADMIN_TOKEN=secrets.token_urlsafe(24),
        PII_KEY=new_pii_key(), LOG_LEVEL="WARNING",
    )
    subprocess.run([str(WXBOT), "migrate"], env=env, cwd=tmp_path, check=True, capture_output=True, timeout=120)
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(WXBOT), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "wxbot serve did not become ready in 30 s"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_wxbot_serve_answers_signed_messages_and_refuses_a_bad_signature(served: str) -> None:
    side = WeChatSide(TOKEN)
    push = side.sign(side.text("oSERVEtestMEMBERaaaaaaaaaaaa", "帮助"))
    with httpx.Client(base_url=served, timeout=10) as client:
        reply = client.post("/wechat", params=push.params, content=push.body)
        assert reply.status_code == 200
        fields = side.open_reply(reply.content)
        assert fields is not None
        assert fields["Content"] == texts.HELP_VISITOR
        again = client.post("/wechat", params=push.params, content=push.body)  # WeChat's retry: replayed
        assert again.content == reply.content

        forged = dict(push.params, signature="0" * 40)
        refused = client.post("/wechat", params=forged, content=push.body)
        assert refused.status_code == 403
        assert refused.json()["error"] == "forbidden"

"""The support bot example end to end: its scripted conversations on the real default model,
the SQLite order skill, policy citations, and the handoff webhook reaching the receiver."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.examples import EXAMPLES, build_example_agent

BOT = EXAMPLES / "support_bot"


def _receiver_module():
    spec = importlib.util.spec_from_file_location("support_webhook_receiver", BOT / "webhook_receiver.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def shop_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(BOT / "shop_skill"))
    monkeypatch.setenv("SHOP_DB", str(tmp_path / "shop.sqlite3"))
    sys.modules.pop("shop_skill", None)
    return tmp_path / "shop.sqlite3"


def test_shop_skill_reads_the_sqlite_file(shop_db: Path, fake_agent):
    from shop_skill import shop_orders

    agent, _ = fake_agent()
    agent.skills = {"shop_orders": shop_orders}
    reply = agent.chat("/order 1234")
    assert reply.skill == "shop_orders"
    assert "Order 1234 (noise-cancelling headphones) is delayed with DHL, tracking NW1234DE" in reply.text
    assert "can't find order 9999" in agent.chat("/order 9999").text
    assert shop_db.exists()


def test_webhook_receiver_records_posts():
    import httpx

    server = _receiver_module().make_server(port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/handoff"
        assert httpx.post(url, json={"event": "handoff"}).status_code == 204
        assert server.received == [{"event": "handoff"}]
    finally:
        server.shutdown()


@pytest.mark.real
def test_support_bot_conversations(shop_db: Path, tmp_path: Path):
    from shop_skill import shop_orders

    from agent.config import WebhookConfig
    from agent.server.webhook import HandoffNotifier
    from agent.toolbox.convtest import load_suite, run_suite

    server = _receiver_module().make_server(port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    agent = build_example_agent(BOT / "agent.yaml", tmp_path / "data", skills={"shop_orders": shop_orders},
                                overrides={"generation": {"max_new_tokens": 32}})
    notifier = HandoffNotifier(WebhookConfig(url=f"http://127.0.0.1:{server.server_address[1]}/handoff",
                                             retries=1), agent.store)
    agent.on_handoff.append(notifier)
    try:
        assert agent.add_document(BOT / "kb") >= 3
        results = run_suite(agent, load_suite(BOT / "conversations.yml"))
        failures = [f"{r.conversation} #{r.turn}: {r.failures} (reply: {r.reply[:200]!r})" for r in results if not r.passed]
        assert not failures, "\n".join(failures)
        assert [r.handoff for r in results] == [False, False, True, False, False]
        deadline = time.time() + 30
        while not server.received and time.time() < deadline:
            time.sleep(0.1)
        assert len(server.received) == 1
        payload = server.received[0]
        assert payload["event"] == "handoff"
        assert payload["session"]["turns"] == 3
        assert payload["trigger"]["intent"]["label"] == "human_request"
        assert any("1234" in m["content"] for m in payload["transcript"])
        assert shop_db.exists()
    finally:
        notifier.close()
        agent.close()
        server.shutdown()

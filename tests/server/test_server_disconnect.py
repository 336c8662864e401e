"""A client that disconnects mid-stream stops its generation and leaves the session
consistent: the partial reply is stored as a cancelled turn and the next turn runs."""

from __future__ import annotations

import time

import httpx

from agent.server.session_ids import stored_id

LONG = " ".join(f"w{i}" for i in range(200))
S1, S2 = stored_id("ann", "s-1"), stored_id("cy", "s-2")  # the ids the clients chose, as stored


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _read_then_leave(url: str, path: str, body: dict, events: int) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        with client.stream("POST", path, json=body) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            seen = 0
            while seen < events:
                if next(lines).startswith("data: "):
                    seen += 1
    # leaving the block closed the connection mid-stream


def test_disconnect_mid_stream_cancels_and_keeps_the_session_consistent(make_app, serve):
    app, agent, backend = make_app([LONG, "second reply"], delay=0.02)
    with serve(app) as url:
        body = {"model": "llmos", "user": "ann", "stream": True, "session_id": "s-1",
                "messages": [{"role": "user", "content": "tell me a long story"}]}
        started = time.monotonic()
        _read_then_leave(url, "/v1/chat/completions", body, events=4)
        _wait_for(lambda: len(agent.history(S1)) == 2)
        # Generation stopped: far fewer than the 200 words (200 x 20 ms = 4 s) were produced.
        assert time.monotonic() - started < 3.0
        user, reply = agent.history(S1)
        assert user.content == "tell me a long story"
        assert reply.meta["finish_reason"] == "cancelled"
        assert 0 < len(reply.content.split()) < 100 and LONG.startswith(reply.content)

        with httpx.Client(base_url=url, timeout=30) as client:
            next_turn = client.post("/v1/chat/completions", json={**body, "stream": False, "messages": [
                {"role": "user", "content": "go on"}]})
        assert next_turn.json()["choices"][0]["message"]["content"] == "second reply"
    assert [m.content for m in agent.history(S1)][::2] == ["tell me a long story", "go on"]
    assert [m.seq for m in agent.history(S1)] == [1, 2, 3, 4]
    # The second prompt saw the partial first reply as history, in order.
    assert [m["role"] for m in backend.history[-1].messages] == ["system", "user", "assistant", "user"]


def test_disconnect_on_the_session_api_too(make_app, serve):
    app, agent, _ = make_app([LONG], delay=0.02)
    sid = agent.new_session("bo").id
    with serve(app) as url:
        _read_then_leave(url, f"/v1/sessions/{sid}/messages", {"content": "story please", "stream": True}, events=3)
        _wait_for(lambda: len(agent.history(sid)) == 2)
    assert agent.history(sid)[1].meta["finish_reason"] == "cancelled"


def _post_then_leave(url: str, path: str, body: dict, after: float) -> None:
    with httpx.Client(base_url=url, timeout=after) as client:
        try:
            client.post(path, json=body)
        except httpx.TimeoutException:
            pass  # the client gave up and closed the connection
        else:
            raise AssertionError("the reply came before the client left")


def test_a_non_streamed_request_whose_client_leaves_is_cancelled_too(make_app, serve):
    app, agent, backend = make_app([LONG, LONG, "short"], delay=0.02)
    with serve(app) as url:
        body = {"model": "llmos", "user": "cy", "session_id": "s-2",
                "messages": [{"role": "user", "content": "a long story, not streamed"}]}
        started = time.monotonic()
        _post_then_leave(url, "/v1/chat/completions", body, after=0.5)
        _wait_for(lambda: len(agent.history(S2)) == 2)
        assert time.monotonic() - started < 3.0  # not the 4 s the whole reply takes
        assert agent.history(S2)[1].meta["finish_reason"] == "cancelled"
        sid = agent.new_session("cy").id
        _post_then_leave(url, f"/v1/sessions/{sid}/messages", {"content": "story please"}, after=0.5)
        _wait_for(lambda: len(agent.history(sid)) == 2)
        assert agent.history(sid)[1].meta["finish_reason"] == "cancelled"
        with httpx.Client(base_url=url, timeout=30) as client:  # the server keeps serving
            reply = client.post("/v1/chat/completions", json={**body, "messages": [{"role": "user", "content": "hi"}]})
        assert reply.status_code == 200

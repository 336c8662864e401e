"""`llmos serve` with the official openai client: chat, streaming, models, sessions."""

from __future__ import annotations

import openai


def _client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)


def test_openai_client_chats_and_streams(make_app, serve):
    app, agent, backend = make_app(["Paris is the capital of France.", "It has about two million people."])
    with serve(app) as url:
        client = _client(url)
        assert {m.id for m in client.models.list()} == {"llmos", "fake"}

        first = client.chat.completions.create(model="llmos", messages=[
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
            user="ann")
        assert first.choices[0].message.content == "Paris is the capital of France."
        assert first.choices[0].finish_reason == "stop"
        # the fake backend counts words: at least the five the client sent
        assert first.usage.completion_tokens == 6 and first.usage.prompt_tokens >= 5
        meta = first.model_extra["llmos"]
        assert meta["user_id"] == "ann" and meta["handoff"] is False and "generate" in meta["timings_ms"]

        # The client resends the conversation; the server continues the same session.
        stream = client.chat.completions.create(model="gpt-4o-mini", stream=True, user="ann",
                                                stream_options={"include_usage": True}, messages=[
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": "How many people live there?"}])
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "It has about two million people."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 6
    finals = [c.model_extra["llmos"] for c in chunks if c.model_extra.get("llmos")]
    assert finals[-1]["session_id"] == meta["session_id"]
    [session] = agent.sessions("ann")
    assert session.turns == 2
    # The agent's own prompt: its persona, the stored history, not the client's system message.
    sent = backend.history[-1].messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert "Be brief." not in sent[0]["content"]


def test_sampling_parameters_reach_the_backend(make_app, serve):
    app, _, backend = make_app(["one two three four five"])
    with serve(app) as url:
        reply = _client(url).chat.completions.create(model="llmos", messages=[{"role": "user", "content": "hi"}],
                                                     max_tokens=2, temperature=0.0, stop=["END"], seed=7)
    options = backend.history[-1].options
    assert (options.max_new_tokens, options.temperature, options.stop, options.seed) == (2, 0.0, ("END",), 7)
    assert reply.choices[0].message.content == "one two" and reply.choices[0].finish_reason == "length"


def test_explicit_session_id_and_user_isolation(make_app, serve):
    from agent.server.session_ids import stored_id

    app, agent, _ = make_app()
    with serve(app) as url:
        client = _client(url)
        one = client.chat.completions.create(model="llmos", user="ann", messages=[{"role": "user", "content": "a"}],
                                             extra_body={"session_id": "ticket-42"})
        assert one.model_extra["llmos"]["session_id"] == "ticket-42"
        client.chat.completions.create(model="llmos", user="ann", messages=[{"role": "user", "content": "b"}],
                                       extra_body={"session_id": "ticket-42"})
        ticket = stored_id("ann", "ticket-42")
        assert [m.content for m in agent.history(ticket)][::2] == ["a", "b"]
        # ids are per user: bob's ticket-42 is his own, and says nothing about ann's
        theirs = client.chat.completions.create(model="llmos", user="bob",
                                                messages=[{"role": "user", "content": "c"}],
                                                extra_body={"session_id": "ticket-42"})
        assert theirs.model_extra["llmos"]["session_id"] == "ticket-42"
    assert [s.id for s in agent.sessions("bob")] == [stored_id("bob", "ticket-42")]
    assert len(agent.history(ticket)) == 4


def test_a_new_conversation_imports_the_clients_history(make_app, serve):
    app, agent, backend = make_app()
    with serve(app) as url:
        _client(url).chat.completions.create(model="llmos", user="cy", messages=[
            {"role": "user", "content": "I am Cy."}, {"role": "assistant", "content": "Hello Cy."},
            {"role": "user", "content": "Who am I?"}])
    [session] = agent.sessions("cy")
    history = agent.history(session.id)
    assert [(m.role, m.content) for m in history][:2] == [("user", "I am Cy."), ("assistant", "Hello Cy.")]
    assert history[0].meta == {"imported": True}
    assert [m["content"] for m in backend.history[-1].messages[1:]] == ["I am Cy.", "Hello Cy.", "Who am I?"]


def test_backend_model_id_is_a_plain_stateless_call(make_app, serve):
    app, agent, backend = make_app(["plain answer here"])
    with serve(app) as url:
        stream = _client(url).chat.completions.create(model="fake", stream=True, messages=[
            {"role": "system", "content": "S"}, {"role": "user", "content": "Q"}])
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "plain answer here"
    assert backend.history[-1].messages == [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    assert agent.sessions() == []


def test_openapi_and_health(make_app, client_for):
    app, _, _ = make_app()
    client = client_for(app)
    assert client.get("/healthz").json() == {"status": "ok"}  # the model ids are for clients: GET /v1/models
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/chat/completions", "/v1/models", "/v1/sessions", "/v1/sessions/{session_id}/messages",
                 "/v1/users/{user_id}", "/healthz"):
        assert path in paths

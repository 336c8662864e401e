"""The FastAPI application: :func:`create_app` around an agent, :func:`build_served_agent`
to make that agent from a config (with the batching backend for a local model)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from agent.config import AgentConfig, ServerConfig
from agent.models.embedded import Progress
from agent.server.errors import install_error_handlers
from agent.server.limits import BodyLimitMiddleware
from agent.server.openapi import install_openapi
from agent.server.routing import principal
from agent.server.state import ServerState

__all__ = ["create_app", "build_served_agent"]

log = logging.getLogger(__name__)

_DESCRIPTION = """An llmos agent behind the OpenAI chat-completions API, plus a session API for
support integrations. Authenticate with `Authorization: Bearer KEY` (keys are configured in
`server.api_keys`; without keys only loopback clients are served)."""


def build_served_agent(config: AgentConfig, progress: Progress | None = None) -> Any:
    """The agent ``llmos serve`` runs: for a local transformers model, concurrent requests
    share one batching backend; everything else is as :class:`~agent.dialogue.Agent` builds it."""
    from agent.dialogue import Agent

    backend = None
    batching = config.server.batching
    if config.server.torch_threads and config.model.backend == "transformers":
        import torch

        torch.set_num_threads(config.server.torch_threads)
    if config.model.backend == "transformers" and batching.enabled:
        from agent.backends.fastbatching import batching_backend
        from agent.models.loader import load_configured

        # The transformers engine runs transformers' forward itself: a fast decoder would
        # only hold a second copy of the weights.
        fast: bool | str = False if batching.engine == "transformers" else ("auto" if batching.engine == "auto" else True)
        model = load_configured(config.model, fast=fast, progress=progress)
        backend = batching_backend(model, engine=batching.engine, max_batch_size=batching.max_batch_size,
                                   window_ms=batching.window_ms, max_prefill_tokens=batching.max_prefill_tokens,
                                   prefill_chunk=batching.prefill_chunk, kv_limit_mb=batching.kv_limit_mb,
                                   prefix_cache_mb=batching.prefix_cache_mb)
    return Agent(config, backend=backend, progress=progress)


def create_app(agent: Any, config: ServerConfig | None = None) -> FastAPI:
    """The HTTP app serving ``agent`` (an :class:`~agent.dialogue.Agent`).

    ``config`` defaults to the agent's ``server`` section. The app does not close the agent:
    whoever made it does.
    """
    from agent.server import openai_routes, session_routes

    config = config or agent.config.server
    state = ServerState.build(agent, config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    # The docs are added below, behind the API's auth unless server.docs says otherwise.
    app = FastAPI(title="llmos", description=_DESCRIPTION, version=_version(), lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.llmos = state
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    install_error_handlers(app)
    app.include_router(openai_routes.router)
    app.include_router(session_routes.router)
    install_openapi(app)
    _add_docs(app, config.docs)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, Any]:
        """Liveness, for anyone (no auth): the server answers. Nothing else is said here;
        ``GET /v1/models`` names the models to authenticated clients."""
        return {"status": "ok"}

    return app


def _add_docs(app: FastAPI, mode: str) -> None:
    """``/openapi.json`` and ``/docs`` (Swagger UI), per ``server.docs``."""
    if mode == "off":
        return
    guard = [] if mode == "public" else [Depends(principal)]

    @app.get("/openapi.json", include_in_schema=False, dependencies=guard)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=guard)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="llmos API")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("llmos")
    except Exception:  # running from a source tree that is not installed
        return "0.0.0"

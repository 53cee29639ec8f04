"""``ladder intake serve``: the app, its dispatcher and uvicorn in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from ladder.intake.app import create_app
from ladder.intake.config import load_intake
from ladder.intake.dispatch import Dispatcher
from ladder.intake.inbox import Inbox

__all__ = ["build", "serve"]

log = logging.getLogger("ladder.intake")


async def _supervise(dispatcher: Dispatcher) -> None:
    """Run the dispatcher; if it ever stops on an error, start it again a moment later."""
    while True:
        try:
            await dispatcher.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # logged and restarted: the inbox keeps every record
            log.error("intake dispatcher stopped (%s); restarting", type(exc).__name__)
            await asyncio.sleep(1)


def build(config_path: str | Path | None, *, max_backoff: float = 30.0) -> tuple[Any, Inbox]:
    """The ASGI app (with its dispatcher as a lifespan task) and its inbox."""
    config = load_intake(config_path)
    inbox = Inbox()
    dispatcher = Dispatcher(inbox, config.deployment, max_backoff=max_backoff)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(_supervise(dispatcher))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return create_app(config, inbox, dispatcher.wake, lifespan), inbox


def serve(
    config_path: str | Path | None,
    host: str,
    port: int,
    *,
    max_backoff: float = 30.0,
    say: Callable[[str], None] = print,
) -> None:
    """Serve until SIGINT/SIGTERM."""
    import uvicorn

    app, inbox = build(config_path, max_backoff=max_backoff)
    enabled = ", ".join(f"/hooks/{s}" for s in sorted(app.state.sources)) or "none"
    say(f"intake on http://{host}:{port} (enabled: {enabled}; inbox {inbox.url})")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        inbox.close()

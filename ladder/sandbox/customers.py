"""Customers using the sandbox's shop while ``ladder demo`` climbs rung 5, as production's users
would: each of a few users asks for ``GET /orders`` every ``interval`` seconds, in one thread,
until stopped. The shop writes a ``[debug_mode]`` line only for the user whose flag is on, into
the sandbox's Rails log, where rung 5 collects it. Only the demo starts them."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import httpx

from ladder.sandbox.shop import IMPERSONATE_HEADER


class LiveCustomers:
    """``start()`` begins the requests (again after ``stop()``); ``stop()`` is safe twice."""

    def __init__(self, url: str, user_ids: Sequence[int | str], interval: float = 0.5) -> None:
        self.url = url.rstrip("/")
        self.user_ids = [str(u) for u in user_ids]
        self.interval = interval
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None or not self.user_ids:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sandbox-customers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=10)

    def _loop(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self._stop.is_set():
                for user in self.user_ids:
                    try:
                        client.get("/orders", headers={IMPERSONATE_HEADER: user})
                        self.sent += 1
                    except httpx.HTTPError:
                        pass  # a customer whose request failed tries again next round
                self._stop.wait(self.interval)

"""One kept httpx client for a provider we talk to over HTTP (EPay, kuaidi100): building
a client per request cost ~30 ms of CPU (bench/tracking_sweep.py)."""

from __future__ import annotations

import asyncio

import httpx


class KeptClient:
    """The client, rebuilt if closed or made in another event loop (its pooled
    connections belong to the loop that opened them)."""

    def __init__(self, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.timeout = timeout
        self.transport = transport
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client.is_closed or self._client_loop is not loop:
            self._client = httpx.AsyncClient(timeout=self.timeout, transport=self.transport)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            await client.aclose()

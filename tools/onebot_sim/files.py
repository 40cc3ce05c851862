"""A tiny HTTP file server on 127.0.0.1, so image segments built from local files have a
real URL the bot can download (``:image <path>`` in chat, ``sim.image_segment(path)``)."""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import secrets
from pathlib import Path
from urllib.parse import quote, unquote

__all__ = ["FileServer", "existing_file"]


def existing_file(path: str | Path) -> Path:
    """``path`` resolved; ``FileNotFoundError`` unless it is a file."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise FileNotFoundError(str(resolved))
    return resolved


class FileServer:
    """Serves registered files at unguessable URLs; started on first use."""

    def __init__(self) -> None:
        self._files: dict[str, Path] = {}
        self._server: asyncio.Server | None = None
        self._port = 0

    async def url_for(self, path: Path) -> str:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self._port = self._server.sockets[0].getsockname()[1]
        token = secrets.token_hex(8)
        self._files[token] = path
        return f"http://127.0.0.1:{self._port}/{token}/{quote(path.name)}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readline()).decode("latin-1").split()
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                del line
            method = request[0] if request else ""
            parts = unquote(request[1]).split("/") if len(request) > 1 else []
            path = self._files.get(parts[1]) if len(parts) > 2 else None
            if method in ("GET", "HEAD") and path is not None:
                body = await asyncio.to_thread(path.read_bytes)
                ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                head = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\n"
            else:
                body, head = b"not found", "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
            head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (OSError, IndexError, UnicodeDecodeError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

"""Images users attach: QQ image URLs expire within hours, so the bytes are kept under
the data directory, named by content hash (the same picture twice is stored once)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from pathlib import Path

import httpx

from .errors import MediaProblem, MediaUnavailable
from .limits import MAX_IMAGE_BYTES

MEDIA_SUBDIR = "media"
# One deadline per command for all of its images together: they download concurrently,
# so five slow images cost one deadline, not five.
DOWNLOAD_DEADLINE_SECONDS = 30.0
_EXTENSIONS = {
    b"\x89PNG": ".png",
    b"\xff\xd8\xff": ".jpg",
    b"GIF8": ".gif",
}


def _extension(data: bytes) -> str | None:
    for magic, extension in _EXTENSIONS.items():
        if data.startswith(magic):
            return extension
    # RIFF is also WAV and AVI; only RIFF....WEBP is an image.
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return None


def store_image(data: bytes, data_dir: Path) -> str:
    """Saves image bytes and returns the path relative to `data_dir`."""
    extension = _extension(data)
    if extension is None:
        raise MediaUnavailable(MediaProblem.NOT_IMAGE)
    if len(data) > MAX_IMAGE_BYTES:
        raise MediaUnavailable(MediaProblem.TOO_LARGE)
    relative = Path(MEDIA_SUBDIR) / f"{hashlib.sha256(data).hexdigest()[:32]}{extension}"
    target = data_dir / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(target.suffix + ".part")
        temporary.write_bytes(data)
        temporary.replace(target)
    return relative.as_posix()


async def download_image(
    url: str, data_dir: Path, *, transport: httpx.AsyncBaseTransport | None = None
) -> str:
    """Fetches an image (bounded in size and time) and stores it; returns its relative path."""
    if not url.startswith(("http://", "https://")):
        raise MediaUnavailable(MediaProblem.DOWNLOAD)
    try:
        async with (
            asyncio.timeout(DOWNLOAD_DEADLINE_SECONDS),  # a trickling server must not hang us
            httpx.AsyncClient(timeout=15, follow_redirects=True, transport=transport) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise MediaUnavailable(MediaProblem.DOWNLOAD)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_IMAGE_BYTES:
                    raise MediaUnavailable(MediaProblem.TOO_LARGE)
                chunks.append(chunk)
    except (httpx.HTTPError, httpx.InvalidURL, TimeoutError) as error:
        raise MediaUnavailable(MediaProblem.DOWNLOAD) from error
    return store_image(b"".join(chunks), data_dir)


async def download_images(
    urls: Sequence[str],
    data_dir: Path,
    *,
    deadline: float = DOWNLOAD_DEADLINE_SECONDS,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[str]:
    """Every image of one command, downloaded concurrently within one `deadline` for them
    all; their relative paths in the order given. The first failure cancels the rest and
    is raised (MediaUnavailable), as is running out of time."""
    if not urls:
        return []
    try:
        async with asyncio.timeout(deadline), asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(download_image(url, data_dir, transport=transport))
                for url in urls
            ]
    except TimeoutError as error:
        raise MediaUnavailable(MediaProblem.DOWNLOAD) from error
    except ExceptionGroup as failed:
        # TaskGroup wraps the failures; the first one is what the user is told.
        first = failed.exceptions[0]
        raise first if isinstance(first, MediaUnavailable) else failed from None
    return [task.result() for task in tasks]


def load_image(relative_path: str, data_dir: Path) -> bytes | None:
    """The stored bytes, or None if the file went missing (a restored backup without media)."""
    target = (data_dir / relative_path).resolve()
    if data_dir.resolve() not in target.parents or not target.is_file():
        return None
    return target.read_bytes()

"""services.media: images kept on disk by content hash, downloads through httpx.

Downloads use httpx.MockTransport (httpx's own test transport), so nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.errors import MediaUnavailable
from services.limits import MAX_IMAGE_BYTES
from services.media import MEDIA_SUBDIR, download_image, load_image, store_image

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"png-body" * 8
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"jpeg-body" * 8
GIF = b"GIF89a\x01\x00\x01\x00" + b"gif-body" * 8
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"webp-body" * 8


def _expected_name(data: bytes, extension: str) -> str:
    return f"{MEDIA_SUBDIR}/{hashlib.sha256(data).hexdigest()[:32]}{extension}"


@pytest.mark.parametrize(
    ("data", "extension"),
    [(PNG, ".png"), (JPEG, ".jpg"), (GIF, ".gif"), (WEBP, ".webp")],
    ids=["png", "jpeg", "gif", "webp"],
)
def test_store_image_detects_type_by_magic(tmp_path: Path, data: bytes, extension: str) -> None:
    relative = store_image(data, tmp_path)
    assert relative == _expected_name(data, extension)
    assert (tmp_path / relative).read_bytes() == data
    assert not list((tmp_path / MEDIA_SUBDIR).glob("*.part"))


def test_store_image_dedupes_by_hash(tmp_path: Path) -> None:
    first = store_image(PNG, tmp_path)
    second = store_image(PNG, tmp_path)
    other = store_image(PNG + b"x", tmp_path)
    assert first == second
    assert other != first
    assert sorted(p.name for p in (tmp_path / MEDIA_SUBDIR).iterdir()) == sorted(
        [Path(first).name, Path(other).name]
    )


def test_store_image_keeps_existing_file(tmp_path: Path) -> None:
    relative = store_image(PNG, tmp_path)
    target = tmp_path / relative
    before = target.stat().st_mtime_ns
    store_image(PNG, tmp_path)
    assert target.stat().st_mtime_ns == before


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, world",
        b"<html><body>404</body></html>",
        b"%PDF-1.7\n",
        b"PK\x03\x04zip",
        b"\x89PN",  # truncated magic
    ],
    ids=["empty", "text", "html", "pdf", "zip", "truncated-png"],
)
def test_store_image_rejects_non_images(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(MediaUnavailable) as caught:
        store_image(data, tmp_path)
    assert caught.value.reason == "not_image"
    assert not (tmp_path / MEDIA_SUBDIR).exists()


@pytest.mark.parametrize(
    "data",
    [
        b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 32,  # a WAV sound
        b"RIFF\x24\x00\x00\x00AVI LIST" + b"\x00" * 32,  # an AVI video
    ],
    ids=["wav", "avi"],
)
def test_store_image_rejects_riff_that_is_not_webp(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(MediaUnavailable) as caught:
        store_image(data, tmp_path)
    assert caught.value.reason == "not_image"


def test_store_image_size_limit(tmp_path: Path) -> None:
    exactly = PNG + b"\x00" * (MAX_IMAGE_BYTES - len(PNG))
    assert len(exactly) == MAX_IMAGE_BYTES
    assert store_image(exactly, tmp_path).endswith(".png")
    with pytest.raises(MediaUnavailable) as caught:
        store_image(exactly + b"\x00", tmp_path)
    assert caught.value.reason == "too_large"
    assert len(list((tmp_path / MEDIA_SUBDIR).iterdir())) == 1


# --- download_image --------------------------------------------------------------------


def _transport(handler) -> httpx.MockTransport:  # type: ignore[no-untyped-def]
    return httpx.MockTransport(handler)


async def test_download_image_ok(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})

    url = "https://gchat.qpic.cn/gchatpic_new/1/2-3-ABC/0?term=2"
    relative = await download_image(url, tmp_path, transport=_transport(handler))
    assert seen == [url]
    assert relative == _expected_name(PNG, ".png")
    assert load_image(relative, tmp_path) == PNG


async def test_download_image_follows_redirects(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(302, headers={"location": "http://img.example/new"})
        return httpx.Response(200, content=JPEG)

    relative = await download_image(
        "http://img.example/old", tmp_path, transport=_transport(handler)
    )
    assert relative == _expected_name(JPEG, ".jpg")


@pytest.mark.parametrize("status", [404, 403, 500, 204])
async def test_download_image_http_error(tmp_path: Path, status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=PNG)

    with pytest.raises(MediaUnavailable) as caught:
        await download_image("https://img.example/a.png", tmp_path, transport=_transport(handler))
    assert caught.value.reason == "download"
    assert not (tmp_path / MEDIA_SUBDIR).exists()


async def test_download_image_connection_error(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(MediaUnavailable) as caught:
        await download_image("https://img.example/a.png", tmp_path, transport=_transport(handler))
    assert caught.value.reason == "download"


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://img.example/a.png", "/tmp/a.png", "", "javascript:x"]
)
async def test_download_image_rejects_non_http_urls(tmp_path: Path, url: str) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=PNG)

    with pytest.raises(MediaUnavailable) as caught:
        await download_image(url, tmp_path, transport=_transport(handler))
    assert caught.value.reason == "download"
    assert calls == []


@pytest.mark.parametrize(
    "url", ["https://[::1/a.png", "http://img.exa\x00mple/a.png"], ids=["bad-ipv6", "nul-byte"]
)
async def test_download_image_malformed_url(tmp_path: Path, url: str) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=PNG)

    with pytest.raises(MediaUnavailable) as caught:
        await download_image(url, tmp_path, transport=_transport(handler))
    assert caught.value.reason == "download"
    assert calls == []


async def test_download_image_not_an_image(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>expired</html>")

    with pytest.raises(MediaUnavailable) as caught:
        await download_image("https://img.example/a.png", tmp_path, transport=_transport(handler))
    assert caught.value.reason == "not_image"


async def test_download_image_stops_an_endless_stream(tmp_path: Path) -> None:
    chunk = b"\x00" * (1024 * 1024)
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield PNG
        while True:
            sent += 1
            yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())

    with pytest.raises(MediaUnavailable) as caught:
        await download_image("https://img.example/big.png", tmp_path, transport=_transport(handler))
    assert caught.value.reason == "too_large"
    # it stopped at the first chunk that crossed the limit instead of reading on
    assert sent == (MAX_IMAGE_BYTES - len(PNG)) // len(chunk) + 1 == 10
    assert not (tmp_path / MEDIA_SUBDIR).exists()


async def test_download_image_oversize_body(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=PNG + b"\x00" * MAX_IMAGE_BYTES)

    with pytest.raises(MediaUnavailable) as caught:
        await download_image("https://img.example/big.png", tmp_path, transport=_transport(handler))
    assert caught.value.reason == "too_large"


# --- load_image ------------------------------------------------------------------------


def test_load_image_returns_stored_bytes(tmp_path: Path) -> None:
    relative = store_image(GIF, tmp_path)
    assert load_image(relative, tmp_path) == GIF


def test_load_image_missing_file(tmp_path: Path) -> None:
    assert load_image("media/0123456789abcdef0123456789abcdef.png", tmp_path) is None
    assert load_image("media/0123.png", tmp_path / "no-such-dir") is None


@pytest.mark.parametrize(
    "path", ["../../etc/passwd", "../secret.txt", "media/../../secret.txt", "/etc/passwd", "", "."]
)
def test_load_image_refuses_escaping_paths(tmp_path: Path, path: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (tmp_path / "secret.txt").write_bytes(b"secret")
    assert load_image(path, data_dir) is None


def test_load_image_refuses_symlink_out_of_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / MEDIA_SUBDIR).mkdir(parents=True)
    outside = tmp_path / "outside.png"
    outside.write_bytes(PNG)
    (data_dir / MEDIA_SUBDIR / "link.png").symlink_to(outside)
    assert load_image(f"{MEDIA_SUBDIR}/link.png", data_dir) is None


def test_load_image_allows_dotdot_that_stays_inside(tmp_path: Path) -> None:
    relative = store_image(PNG, tmp_path)
    assert load_image(f"{MEDIA_SUBDIR}/../{relative}", tmp_path) == PNG


# --- download_images: one deadline for all of a command's images --------------------------


@pytest.fixture
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.services.slow_images import PROXY_VARIABLES

    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("_no_proxy")
async def test_download_images_fetches_five_slow_images_within_one_deadline(
    tmp_path: Path,
) -> None:
    import time

    from services.media import download_images
    from tests.services.slow_images import SlowImages

    with SlowImages(delay=1.0).running() as server:
        started = time.monotonic()
        paths = await download_images(
            [server.image_url(n) for n in range(5)], tmp_path, deadline=3.0
        )
        elapsed = time.monotonic() - started
    # One after another they would take five seconds and miss the three-second deadline.
    assert elapsed < 2.5, elapsed
    assert server.requests == 5
    assert len(set(paths)) == 5
    assert all((tmp_path / path).read_bytes().startswith(PNG[:8]) for path in paths)


@pytest.mark.usefixtures("_no_proxy")
async def test_download_images_gives_up_on_all_once_the_deadline_passes(tmp_path: Path) -> None:
    import time

    from services.media import download_images
    from tests.services.slow_images import SlowImages

    with SlowImages(delay=3.0).running() as server:
        started = time.monotonic()
        with pytest.raises(MediaUnavailable) as caught:
            await download_images([server.image_url(n) for n in range(5)], tmp_path, deadline=0.5)
        elapsed = time.monotonic() - started
    assert caught.value.reason == "download"
    assert elapsed < 1.5, elapsed
    assert not (tmp_path / MEDIA_SUBDIR).exists()


async def test_download_images_raises_the_first_failure(tmp_path: Path) -> None:
    from services.media import download_images

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/bad"):
            return httpx.Response(200, content=b"<html>not an image</html>")
        return httpx.Response(200, content=PNG)

    urls = ["https://img.example/good", "https://img.example/bad"]
    with pytest.raises(MediaUnavailable) as caught:
        await download_images(urls, tmp_path, transport=_transport(handler))
    assert caught.value.reason == "not_image"
    assert await download_images([], tmp_path) == []

"""OneBot v11 message segments and CQ codes: building, parsing, rendering as plain text.

Pure functions and types, no I/O; everything else in the simulator builds on these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "MessageLike",
    "Seg",
    "Segment",
    "copy_segment",
    "event_segments",
    "normalize_message",
    "parse_cq",
    "render_text",
    "to_cq",
]

Segment = dict[str, Any]
MessageLike = str | Segment | Sequence[Segment | str]


class Seg:
    """Builders for OneBot v11 message segments (array message format)."""

    @staticmethod
    def text(text: str) -> Segment:
        return {"type": "text", "data": {"text": text}}

    @staticmethod
    def image(file: str, url: str | None = None) -> Segment:
        """An image segment. ``url`` defaults to ``file`` when that is an http(s) URL."""
        if url is None and file.startswith(("http://", "https://")):
            url = file
            file = Path(urlparse(file).path).name or "image.jpg"
        data: dict[str, Any] = {"file": file}
        if url is not None:
            data["url"] = url
        return {"type": "image", "data": data}

    @staticmethod
    def at(qq: int | str) -> Segment:
        return {"type": "at", "data": {"qq": str(qq)}}

    @staticmethod
    def reply(message_id: int | str) -> Segment:
        return {"type": "reply", "data": {"id": str(message_id)}}

    @staticmethod
    def face(face_id: int | str) -> Segment:
        return {"type": "face", "data": {"id": str(face_id)}}


_CQ_RE = re.compile(r"\[CQ:([A-Za-z0-9_.\-]+)((?:,[^\]]*)?)\]")


def _cq_unescape(text: str) -> str:
    return (
        text.replace("&#44;", ",").replace("&#91;", "[").replace("&#93;", "]").replace("&amp;", "&")
    )


def _cq_escape(text: str, *, param: bool = False) -> str:
    text = text.replace("&", "&amp;").replace("[", "&#91;").replace("]", "&#93;")
    return text.replace(",", "&#44;") if param else text


def parse_cq(message: str) -> list[Segment]:
    """Parse a CQ-code string (``"hi[CQ:at,qq=1]"``) into a list of segments."""
    segments: list[Segment] = []
    pos = 0
    for match in _CQ_RE.finditer(message):
        if match.start() > pos:
            segments.append(Seg.text(_cq_unescape(message[pos : match.start()])))
        data: dict[str, Any] = {}
        for item in match.group(2).split(",")[1:]:
            key, _, value = item.partition("=")
            if key:
                data[key.strip()] = _cq_unescape(value)
        segments.append({"type": match.group(1), "data": data})
        pos = match.end()
    if pos < len(message):
        segments.append(Seg.text(_cq_unescape(message[pos:])))
    return segments


def to_cq(segments: Iterable[Segment]) -> str:
    """Render segments as a CQ-code string (what implementations put in ``raw_message``)."""
    parts: list[str] = []
    for seg in segments:
        data = seg.get("data") or {}
        if seg.get("type") == "text":
            parts.append(_cq_escape(str(data.get("text", ""))))
            continue
        params = "".join(
            f",{key}={_cq_escape(str(value), param=True)}"
            for key, value in data.items()
            if value is not None
        )
        parts.append(f"[CQ:{seg.get('type')}{params}]")
    return "".join(parts)


def copy_segment(seg: Segment) -> Segment:
    """A copy of ``seg`` with ``type`` as str and its own ``data`` dict."""
    return {"type": str(seg["type"]), "data": dict(seg.get("data") or {})}


def normalize_message(message: Any, *, auto_escape: bool = False) -> list[Segment]:
    """Normalise a ``message`` API parameter to a list of segments.

    Accepts an array of segments, a single segment dict or a CQ-code string (taken
    literally when ``auto_escape`` is true). Strings inside an array become text segments.
    """
    if message is None:
        return []
    if isinstance(message, str):
        return [Seg.text(message)] if auto_escape else parse_cq(message)
    if isinstance(message, dict):
        return [copy_segment(message)] if "type" in message else []
    if isinstance(message, list | tuple):
        result: list[Segment] = []
        for item in message:
            if isinstance(item, str):
                result.append(Seg.text(item))
            elif isinstance(item, dict) and "type" in item:
                result.append(copy_segment(item))
        return result
    return [Seg.text(str(message))]


def event_segments(message: MessageLike) -> list[Segment]:
    """Segments of a message the simulator posts as a user.

    A plain ``str`` is ONE literal text segment: CQ codes are deliberately not parsed.
    """
    if isinstance(message, str):
        return [Seg.text(message)]
    if isinstance(message, dict):
        return [copy_segment(message)]
    return normalize_message(list(message))


def _describe_file(value: str) -> str:
    if value.startswith("base64://"):
        return f"base64://…({len(value) - 9} chars)"
    return value


def render_text(segments: Iterable[Segment]) -> str:
    """Plain-text view of a message.

    Text segments are concatenated, images become ``[图片:<file>]``, ``at`` becomes
    ``@<qq>`` and ``reply`` segments are dropped.
    """
    out: list[str] = []
    for seg in segments:
        kind = seg.get("type")
        data = seg.get("data") or {}
        if kind == "text":
            out.append(str(data.get("text", "")))
        elif kind == "image":
            out.append(f"[图片:{_describe_file(str(data.get('file') or data.get('url') or ''))}]")
        elif kind == "at":
            out.append(f"@{data.get('qq', '')}")
        elif kind == "reply":
            continue
        elif kind == "face":
            out.append(f"[表情:{data.get('id', '')}]")
        elif kind == "node":
            out.append(render_text(normalize_message(data.get("content"))))
        else:
            out.append(f"[{kind}]")
    return "".join(out)

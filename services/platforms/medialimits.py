"""What a platform takes in a media file (size, format, video length, image shape), and how a file
Herald has looked at (its ``MediaFacts``) measures up.

Each adapter declares its limits once (``media_limits(metadata)``); the media check compares every
targeted platform's with the facts read from the file's first bytes. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MB = 1024 * 1024

#: a content type's everyday name, for messages
_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WebP",
            "video/mp4": "MP4", "video/quicktime": "MOV", "video/3gpp": "3GPP"}


@dataclass(frozen=True)
class MediaFacts:
    """What Herald learnt about one media file from its server's answer and its first bytes.
    A fact it could not learn (no Content-Length, a format it does not read) is None."""

    url: str
    #: lower case, without parameters: the file's own signature where Herald recognises it, else the
    #: server's Content-Type (None when it said nothing more than application/octet-stream)
    content_type: str | None
    size: int | None  #: bytes: the Content-Range total, else Content-Length
    width: int | None = None  #: pixels (PNG, JPEG, GIF, WebP)
    height: int | None = None
    duration_seconds: float | None = None  #: MP4/MOV whose ``moov`` box comes first
    #: the URL answered with a redirect (to a public address) before the file
    redirected: bool = False


@dataclass(frozen=True)
class MediaLimits:
    """One platform's media limits; a limit left None is not checked (the platform's is unknown to
    us, or it has none). ``label`` is the platform's name as people write it, for messages."""

    label: str
    image_bytes: int | None = None
    gif_bytes: int | None = None  #: GIFs' own limit where it differs from other images'
    video_bytes: int | None = None
    image_types: tuple[str, ...] = ()  #: () : any image/*
    video_types: tuple[str, ...] = ()  #: () : any video/*
    video_seconds: tuple[float, float] | None = None  #: (shortest, longest)
    document_bytes: int | None = None
    document_types: tuple[str, ...] = ()  #: () : any document type
    image_aspect: tuple[float, float] | None = None  #: (narrowest, widest) width / height
    #: Herald downloads the file itself at publish time, and follows no redirect when it does
    downloads: bool = False

    def problems(self, kind: str, facts: MediaFacts) -> list[str]:
        """What this platform would refuse in ``facts`` for a media item of ``kind`` (image, video or document)."""
        if kind == "document":
            return self._document_problems(facts)
        found = []
        noun = "videos" if kind == "video" else "images"
        is_gif = facts.content_type == "image/gif"
        limit = self.video_bytes if kind == "video" else (self.gif_bytes if is_gif and self.gif_bytes else self.image_bytes)
        if limit is not None and facts.size is not None and facts.size > limit:
            what = "GIFs" if is_gif and self.gif_bytes else noun
            found.append(f"{self.label} takes {what} up to {_size(limit)}; this one is {_size(facts.size, like=limit)}")
        allowed = self.video_types if kind == "video" else self.image_types
        if allowed and facts.content_type is not None and facts.content_type not in allowed:
            names = " or ".join(_FORMATS.get(t, t) for t in allowed)
            this = _FORMATS.get(facts.content_type, facts.content_type)
            found.append(f"{self.label} takes {noun} as {names}; this one is {this}")
        if kind == "video" and self.video_seconds and facts.duration_seconds is not None:
            shortest, longest = self.video_seconds
            if not shortest <= facts.duration_seconds <= longest:
                span = f"up to {_duration(longest)}" if shortest == 0 else f"of {_duration(shortest)} to {_duration(longest)}"
                found.append(f"{self.label} takes videos {span}; this one is {_duration(facts.duration_seconds)}")
        if kind == "image" and self.image_aspect and facts.width and facts.height:
            narrowest, widest = self.image_aspect
            ratio = facts.width / facts.height
            if not narrowest - 0.005 <= ratio <= widest + 0.005:  # as the platforms round
                found.append(f"{self.label} takes images from {_ratio(narrowest)} (tall) to {_ratio(widest)} (wide); "
                             f"this one is {facts.width}×{facts.height} ({ratio:.2f}:1)")
        if self.downloads and facts.redirected:
            found.append(f"{self.label}: Herald downloads this file itself when it publishes and follows no "
                         "redirect; this URL redirects: give the address it redirects to")
        return found


    def _document_problems(self, facts: MediaFacts) -> list[str]:
        found = []
        if self.document_bytes is not None and facts.size is not None and facts.size > self.document_bytes:
            found.append(f"{self.label} takes documents up to {_size(self.document_bytes)}; "
                         f"this one is {_size(facts.size, like=self.document_bytes)}")
        if self.document_types and facts.content_type is not None and facts.content_type not in self.document_types:
            found.append(f"{self.label} takes documents as PDF, PPT(X) or DOC(X); this one is {facts.content_type}")
        if self.downloads and facts.redirected:
            found.append(f"{self.label}: Herald downloads this file itself when it publishes and follows no "
                         "redirect; this URL redirects: give the address it redirects to")
        return found


def limits_of(platform: Any, metadata: dict[str, Any] | None) -> MediaLimits:
    """``platform``'s declared limits for a channel with ``metadata``; none but its name when it
    declares none."""
    declared = getattr(platform, "media_limits", None)
    if declared is None:
        return MediaLimits(label=str(platform.name))
    limits: MediaLimits = declared(metadata or {})
    return limits


def _size(n: float, like: float | None = None) -> str:
    """Bytes as people read them: "8 MB", "12.4 MB", or "1,000,000 bytes" for a limit set in bytes."""
    unit = like if like is not None else n
    if unit % MB and unit < 10 * MB:
        return f"{int(n):,} bytes"
    return f"{n / MB:.1f}".removesuffix(".0") + " MB"


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {seconds % 60:.0f} s"
    return f"{seconds:.1f}".removesuffix(".0") + " s"


def _ratio(value: float) -> str:
    return {0.8: "4:5", 1.91: "1.91:1", 0.1: "1:10", 10.0: "10:1"}.get(value, f"{value:g}:1")

"""What a platform is handed: the shared content with its own override applied (Content.for_platform)."""

from __future__ import annotations

from services.domain.models import Content, Media

VIDEO = Media("video", "https://cdn.example.com/a.mp4")
SHARED = Content(text="shared", media=(VIDEO,), platforms={
    "x": {"text": "short"},
    "youtube": {"title": "Launch day", "privacy_status": "unlisted"},
})


def test_an_override_replaces_the_text_and_keeps_its_platforms_own_options():
    youtube = SHARED.for_platform("youtube")
    assert (youtube.text, youtube.media) == ("shared", (VIDEO,))
    assert youtube.platforms == {"youtube": {"title": "Launch day", "privacy_status": "unlisted"}}


def test_another_platforms_override_is_not_handed_on():
    x = SHARED.for_platform("x")
    assert (x.text, x.media, x.platforms) == ("short", (VIDEO,), {"x": {"text": "short"}})


def test_a_platform_without_an_override_gets_the_shared_content_alone():
    assert SHARED.for_platform("mastodon") == Content(text="shared", media=(VIDEO,))

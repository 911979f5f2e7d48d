"""What a media file's first bytes say: its format, an image's size, a video's length; and how
those facts measure up against a platform's declared limits. Files are built byte by byte."""

from __future__ import annotations

import pytest

from services.platforms.instagram import InstagramPlatform
from services.platforms.mastodon import MastodonPlatform
from services.platforms.medialimits import MB, MediaFacts, MediaLimits, limits_of
from services.platforms.mediaprobe import HEAD_BYTES, image_dimensions, mp4_duration, sniff_type
from services.platforms.x import XPlatform
from tests.support import mediafiles


@pytest.mark.parametrize(("data", "kind", "size"), [
    (mediafiles.png(1080, 1350), "image/png", (1080, 1350)),  # a 4:5 portrait
    (mediafiles.gif(320, 240), "image/gif", (320, 240)),
    (mediafiles.jpeg(4032, 3024), "image/jpeg", (4032, 3024)),  # a phone photo
    (mediafiles.webp_lossless(1200, 628), "image/webp", (1200, 628)),  # VP8L
    (mediafiles.webp_lossy(640, 480), "image/webp", (640, 480)),  # VP8 key frame
])
def test_image_format_and_dimensions_come_from_the_header(data, kind, size):
    assert sniff_type(data) == kind
    assert image_dimensions(data) == size


def test_an_image_cut_off_inside_its_header_has_no_dimensions():
    assert image_dimensions(mediafiles.png(10, 10)[:20]) is None
    assert image_dimensions(mediafiles.jpeg(10, 10)[:30]) is None  # before SOF0
    assert image_dimensions(b"<html>not an image</html>") is None


@pytest.mark.parametrize(("data", "seconds"), [
    (mediafiles.mp4(12.5), 12.5),  # mvhd version 0
    (mediafiles.mp4(3600.0, timescale=90000, version=1), 3600.0),  # version 1: 64-bit duration
    (mediafiles.mp4(42.0, brand=b"qt  "), 42.0),  # a QuickTime .mov lays out the same boxes
    (mediafiles.mp4(30.0, moov_first=False, mdat_bytes=HEAD_BYTES), None),  # moov after the media: not read
])
def test_video_duration_comes_from_mvhd_when_moov_is_in_the_first_bytes(data, seconds):
    assert mp4_duration(data[:HEAD_BYTES]) == seconds


@pytest.mark.parametrize(("brand", "kind"), [
    (b"isom", "video/mp4"),
    (b"qt  ", "video/quicktime"),
    (b"3gp5", "video/3gpp"),
    (b"heic", "image/heic"),  # an iPhone photo: an ISO BMFF file, but a still image
    (b"avif", "image/avif"),
])
def test_video_format_comes_from_the_ftyp_brand(brand, kind):
    assert sniff_type(mediafiles.mp4(1.0, brand=brand)) == kind


def facts(**known) -> MediaFacts:
    return MediaFacts(url="https://cdn.example.com/f", **{"content_type": None, "size": None, **known})


INSTAGRAM = limits_of(InstagramPlatform(), {})


@pytest.mark.parametrize(("kind", "found", "message"), [
    # the example the issue gives
    ("image", facts(content_type="image/jpeg", size=int(12.4 * MB)), "Instagram takes images up to 8 MB; this one is 12.4 MB"),
    ("image", facts(content_type="image/png", size=MB), "Instagram takes images as JPEG; this one is PNG"),
    # a 9:16 story-shaped image on the feed
    ("image", facts(content_type="image/jpeg", size=MB, width=1080, height=1920),
     "Instagram takes images from 4:5 (tall) to 1.91:1 (wide); this one is 1080×1920 (0.56:1)"),
    ("video", facts(content_type="video/mp4", size=MB, duration_seconds=2.0),
     "Instagram takes videos of 3 s to 15 min; this one is 2 s"),
    ("video", facts(content_type="video/mp4", size=MB, duration_seconds=16 * 60 + 5.0),
     "Instagram takes videos of 3 s to 15 min; this one is 16 min 5 s"),
])
def test_a_file_over_a_platform_limit_is_named_with_the_limit(kind, found, message):
    assert INSTAGRAM.problems(kind, found) == [message]


def test_a_file_within_every_limit_or_with_unknown_facts_passes():
    assert INSTAGRAM.problems("image", facts(content_type="image/jpeg", size=8 * MB, width=1080, height=1080)) == []
    assert INSTAGRAM.problems("video", facts()) == []  # nothing known: nothing to hold against it


def test_an_instagram_story_takes_a_full_screen_image():
    story = limits_of(InstagramPlatform(), {"ig_type": "story"})
    assert story.problems("image", facts(content_type="image/jpeg", size=MB, width=1080, height=1920)) == []
    assert story.problems("image", facts(content_type="image/jpeg", size=9 * MB)) == [
        "Instagram takes images up to 8 MB; this one is 9 MB"]


def test_x_gifs_have_their_own_limit_and_a_redirect_matters_where_herald_downloads():
    x = limits_of(XPlatform(), {})
    assert x.problems("image", facts(content_type="image/gif", size=12 * MB)) == []
    assert x.problems("image", facts(content_type="image/png", size=6 * MB)) == ["X takes images up to 5 MB; this one is 6 MB"]
    [redirect] = x.problems("image", facts(content_type="image/png", size=MB, redirected=True))
    assert "follows no redirect" in redirect
    assert INSTAGRAM.problems("image", facts(content_type="image/jpeg", size=MB, redirected=True)) == []


def test_mastodon_limits_are_the_instance_s_own():
    limits = limits_of(MastodonPlatform(), {"image_size_limit": 10 * MB, "video_size_limit": 40 * MB})
    assert limits.problems("image", facts(size=11 * MB)) == ["Mastodon takes images up to 10 MB; this one is 11 MB"]


def test_a_limit_set_in_bytes_is_shown_in_bytes():
    bluesky = MediaLimits("Bluesky", image_bytes=1_000_000)
    assert bluesky.problems("image", facts(size=1_200_000)) == ["Bluesky takes images up to 1,000,000 bytes; this one is 1,200,000 bytes"]

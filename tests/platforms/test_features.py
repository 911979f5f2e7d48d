"""Every adapter declares what it can do beyond publishing, and does exactly that: the engine reads
``features`` (never ``hasattr``), so an undeclared method would be silently ignored and a declared
one missing would fail mid-run."""

from __future__ import annotations

import inspect

import pytest

from services.platforms.base import (
    CommentingPlatform,
    Feature,
    MeasuringPlatform,
    OAuthPlatform,
    Platform,
    ReconcilingPlatform,
    RefreshablePlatform,
    ThreadingPlatform,
    VerifyingPlatform,
)
from services.platforms.registry import build_platforms

PLATFORMS = build_platforms(outbox=None, public_url="http://localhost")  # type: ignore[arg-type]
#: the methods (and attributes) each feature's protocol adds to Platform's
PROTOCOLS = {Feature.REFRESH: RefreshablePlatform, Feature.LOOKUP: ReconcilingPlatform,
             Feature.VERIFY: VerifyingPlatform, Feature.OAUTH: OAuthPlatform, Feature.METRICS: MeasuringPlatform,
             Feature.THREAD: ThreadingPlatform, Feature.FIRST_COMMENT: CommentingPlatform}


def _added(protocol: type) -> set[str]:
    mine = {name for name in vars(protocol) if not name.startswith("_")} | set(getattr(protocol, "__annotations__", {}))
    return mine - set(vars(Platform)) - set(Platform.__annotations__)


@pytest.mark.parametrize("name", sorted(PLATFORMS))
@pytest.mark.parametrize("feature", sorted(PROTOCOLS, key=lambda f: f.value))
def test_an_adapter_implements_a_feature_exactly_when_it_declares_it(name, feature):
    platform = PLATFORMS[name]
    members = _added(PROTOCOLS[feature])
    has = {member for member in members if hasattr(platform, member)}
    if feature in platform.features:
        assert has == members, f"{name} declares {feature.value} but lacks {sorted(members - has)}"
        for member in members:
            if inspect.isfunction(getattr(PROTOCOLS[feature], member, None)):
                assert inspect.iscoroutinefunction(getattr(platform, member)) == inspect.iscoroutinefunction(
                    getattr(PROTOCOLS[feature], member)), f"{name}.{member} must match the protocol (async or not)"
    else:
        assert not has, f"{name} has {sorted(has)} but does not declare {feature.value}: the engine would not use it"


def test_every_adapter_declares_its_features_as_known_ones():
    for name, platform in PLATFORMS.items():
        assert isinstance(platform.features, frozenset) and platform.features <= set(Feature), name
        assert platform.name == name


def test_metrics_are_declared_where_the_platform_lets_herald_read_a_posts_figures():
    """README "Analytics" says why the others do not: the Telegram Bot API and the WhatsApp Cloud API count
    nothing per message, a webhook has nowhere to ask, and LinkedIn's post statistics need scopes (r_member_social,
    r_member_postAnalytics) that Herald's member app does not get."""
    measuring = {name for name, platform in PLATFORMS.items() if Feature.METRICS in platform.features}
    assert measuring == {"sandbox", "instagram", "facebook", "threads", "x", "bluesky", "mastodon", "youtube"}


def test_threads_and_first_comments_are_declared_where_issue_15_puts_them():
    """README "Platforms": a thread is a reply chain on these four; a first comment a comment (a reply on X and
    Threads) on these five. Elsewhere the door refuses them (a 422 naming the field), never drops them silently."""
    threading = {name for name, platform in PLATFORMS.items() if Feature.THREAD in platform.features}
    commenting = {name for name, platform in PLATFORMS.items() if Feature.FIRST_COMMENT in platform.features}
    assert threading == {"x", "threads", "bluesky", "mastodon"}
    assert commenting == {"instagram", "facebook", "linkedin", "x", "threads"}

"""A post's status derived from its targets."""

from __future__ import annotations

import pytest

from services.domain.models import PostStatus as P
from services.domain.models import TargetStatus as T
from services.domain.transitions import conflict_message, derive_post_status


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        ([T.PUBLISHED, T.PUBLISHED], P.PUBLISHED),
        ([T.PUBLISHED, T.FAILED], P.PARTIAL),
        ([T.FAILED, T.FAILED], P.FAILED),
        ([T.PUBLISHED, T.PENDING], P.SCHEDULED),  # one waits for a retry
        ([T.FAILED, T.UNKNOWN], P.NEEDS_REVIEW),  # someone must look
        ([T.PUBLISHED, T.CANCELLED], P.PUBLISHED),  # cancelled targets do not count
        ([T.CANCELLED], P.CANCELLED),
        ([], P.CANCELLED),
    ],
)
def test_derive_post_status(targets, expected):
    assert derive_post_status(targets) is expected


def test_conflict_message_says_why():
    assert conflict_message("edit", "published") == "cannot edit this post: it has been published; published posts cannot be changed"

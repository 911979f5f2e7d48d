"""X's weighted post length, after twitter-text v3 (config/v3.json) and docs.x.com "Counting characters".

Text is NFC-normalised; each URL counts 23 (t.co); each emoji, however many code points it joins,
counts 2; any other code point counts 1 inside four ranges and 2 outside them (so CJK counts 2).
Two known gaps against twitter-text: bare domains are recognised only for a few common gTLDs
(twitter-text knows every TLD), and the emoji set is approximated by code-point blocks. Both only
matter near the limit, where X's own 400 still stops the post.
"""

from __future__ import annotations

import re
import unicodedata

MAX_WEIGHTED_LENGTH = 280
URL_LENGTH = 23
EMOJI_WEIGHT = 2
#: (first, last) code points weighing 1; every other code point weighs 2
WEIGHT_ONE_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))

# Every code point here lies above 8247, so on its own it already weighs 2; the blocks only matter
# for joining modifiers, variation selectors and ZWJ sequences into one emoji.
_PICTOGRAPH = (
    "\u203c\u2049\u2122\u2139\u2194-\u21aa\u231a-\u23ff\u24c2\u25aa-\u27bf\u2934\u2935\u2b05-\u2b55"
    "\u3030\u303d\u3297\u3299\U0001f000-\U0001faff"
)
_MODIFIERS = "[\ufe0f\U0001f3fb-\U0001f3ff]*[\U000e0020-\U000e007f]*"
_ELEMENT = f"[{_PICTOGRAPH}]{_MODIFIERS}"
_EMOJI = (
    r"[\U0001f1e6-\U0001f1ff]{2}"  # a flag: two regional indicators
    r"|[0-9#*]\ufe0f?\u20e3"  # a keycap
    r"|[\u00a9\u00ae]\ufe0f"  # (c) and (R) are emoji only in emoji presentation
    rf"|{_ELEMENT}(?:\u200d{_ELEMENT})*"
)
_URL = (
    r"(?:https?://|www\.)[^\s<>\"]+"
    r"|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:com|net|org|edu|gov|info|biz|xyz|app|dev)\b(?:/[^\s<>\"]*)?"
)
_TOKEN = re.compile(f"(?P<url>{_URL})|(?P<emoji>{_EMOJI})", re.IGNORECASE)
_URL_TRAILING = ".,:;!?'\")]}"


def _code_point_weight(char: str) -> int:
    point = ord(char)
    return 1 if any(first <= point <= last for first, last in WEIGHT_ONE_RANGES) else 2


def _plain_weight(text: str) -> int:
    return sum(_code_point_weight(c) for c in text)


def weighted_length(text: str) -> int:
    """The length X counts against the 280 limit."""
    text = unicodedata.normalize("NFC", text)
    total, position = 0, 0
    for match in _TOKEN.finditer(text):
        start, end = match.span()
        if match.group("url"):
            # Trailing punctuation closes a sentence, not the URL: it is counted as text.
            end = start + len(match.group().rstrip(_URL_TRAILING))
            total += _plain_weight(text[position:start]) + URL_LENGTH + _plain_weight(text[end:match.end()])
        else:
            total += _plain_weight(text[position:start]) + EMOJI_WEIGHT
        position = match.end()
    return total + _plain_weight(text[position:])

"""The service's operations figures in Prometheus' text exposition format 0.0.4.

The format (prometheus.io/docs/instrumenting/exposition_formats/, "Text-based format"): lines end
with a line feed; each metric family has one ``# HELP`` and one ``# TYPE`` line before its samples,
and its samples are not interleaved with another family's; a label value escapes backslash, double
quote and line feed (``\\\\``, ``\\"``, ``\\n``), HELP text backslash and line feed; a value is a float as
Go's ParseFloat reads it, ``NaN`` and ``+Inf`` included. Served as ``text/plain; version=0.0.4``.

Every figure is a gauge. The counts are over a sliding window (the last 24 hours, the last 7 days)
and fall as the window moves on: they are not counters, and so do not carry the ``_total`` suffix
that Prometheus' naming conventions keep for counters (a ``rate()`` over a count that falls would
read every fall as a counter reset). Undefined figures (a ratio with nothing finished, a percentile
with nothing published) are ``NaN``, as client libraries write an empty summary's quantiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from services.domain.operations import OperationsFigures

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OUTCOMES = ("published", "failed", "unknown")
QUANTILES = (("0.5", "p50_ms"), ("0.95", "p95_ms"))

Sample = tuple[dict[str, str], float | int | None]


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def number(value: float | int | None) -> str:
    """A sample value as the format writes it: None (undefined) is NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(value) if isinstance(value, int) else repr(float(value))


def _family(name: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    lines = [f"# HELP {name} {escape_help(help_text)}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        rendered = ",".join(f'{key}="{escape_label(val)}"' for key, val in labels.items())
        lines.append(f"{name}{{{rendered}}} {number(value)}" if rendered else f"{name} {number(value)}")
    return lines


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def exposition(figures: OperationsFigures) -> str:
    """The figures as one scrape's text: every window's outcomes by platform, ratios and publish lag,
    then the posts stuck and due at ``figures.now``."""
    windows = figures.windows.values()
    platforms = sorted({p for w in windows for p in w.by_platform})
    now = figures.now
    lines: list[str] = []
    lines += _family(
        "herald_targets_finished",
        "Targets whose last attempt ended in the window and that are now published, failed or unknown.",
        (({"window": w.name, "platform": p, "outcome": o},
          getattr(w.by_platform[p], o) if p in w.by_platform else 0)
         for w in windows for p in platforms for o in OUTCOMES))
    lines += _family("herald_targets_retried", "Targets finished in the window that took more than one attempt.",
                     (({"window": w.name}, w.retried) for w in windows))
    lines += _family("herald_success_ratio", "Published / finished targets in the window (NaN when none finished).",
                     (({"window": w.name}, w.success_ratio) for w in windows))
    lines += _family("herald_failure_ratio", "Failed or unknown / finished targets in the window (NaN when none finished).",
                     (({"window": w.name}, w.failure_ratio) for w in windows))
    lines += _family("herald_retry_ratio", "Retried / finished targets in the window (NaN when none finished).",
                     (({"window": w.name}, w.retry_ratio) for w in windows))
    lines += _family(
        "herald_publish_lag_seconds",
        "Publish lag (end of the publishing attempt minus due time) of the targets published in the window, by quantile.",
        (({"window": w.name, "quantile": q}, _seconds(getattr(w.publish_lag, field))) for w in windows
         for q, field in QUANTILES))
    lines += _family("herald_publish_lag_max_seconds", "Largest publish lag of the targets published in the window.",
                     (({"window": w.name}, _seconds(w.publish_lag.max_ms)) for w in windows))
    lines += _family("herald_posts_stuck", "Posts still publishing whose lease has expired (no run recovered them).",
                     [({}, figures.stuck)])
    stuck_for = (now - figures.oldest_stuck_lease_expires_at).total_seconds() if figures.oldest_stuck_lease_expires_at else 0
    lines += _family("herald_posts_stuck_oldest_seconds", "How long past its lease the oldest stuck post is (0 when none).",
                     [({}, float(stuck_for))])
    lines += _family("herald_due_backlog", "Scheduled posts that are due now.", [({}, figures.due_backlog)])
    waited = max((now - figures.oldest_due_at).total_seconds(), 0.0) if figures.oldest_due_at else 0.0
    lines += _family("herald_due_backlog_oldest_seconds", "How long the oldest due post has been due (0 when none).",
                     [({}, float(waited))])
    if figures.last_run_at is not None:
        lines += _family("herald_cron_last_run_timestamp_seconds", "When the latest cron run started (Unix time).",
                         [({}, figures.last_run_at.timestamp())])
    return "\n".join(lines) + "\n"

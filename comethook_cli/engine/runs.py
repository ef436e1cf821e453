"""What a run of deliveries came to: statistics, CI expectations, and the comparison of simulated retries.

Pure functions over `Delivery` values: no I/O, no exit codes (the command layer decides those).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from comethook_cli.cometchat.events import get
from comethook_cli.models import JSON, Delivery

#: What `--expect` may ask for: a before_message verdict, or `ok` (every delivery got a usable 2xx).
Expected = Literal["pass", "inject", "drop", "ok"]
EXPECTATIONS: tuple[Expected, ...] = ("pass", "inject", "drop", "ok")


@dataclass(frozen=True)
class Summary:
    """What a run of deliveries came to."""

    count: int
    ok: int
    failed: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    rps: float


@dataclass(frozen=True)
class RetryReport:
    """Whether the original delivery and its simulated retries all got the same answer."""

    attempts: int
    consistent: bool
    detail: str


@dataclass(frozen=True)
class Expectations:
    """CI assertions: --expect, --expect-json, --max-latency."""

    verdict: Expected | None = None
    json: Sequence[tuple[str, JSON]] = ()
    max_latency_ms: float | None = None
    #: The PATH=VALUE expressions `json` was parsed from, as written (for the report of what was asserted).
    json_text: Sequence[str] = ()


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(deliveries: Sequence[Delivery], elapsed: float) -> Summary:
    """Count, ok, failed, p50/p95/p99 latency, requests per second."""
    latencies = sorted(d.latency_ms for d in deliveries if d.latency_ms is not None)
    ok = sum(1 for d in deliveries if d.ok)
    return Summary(
        count=len(deliveries),
        ok=ok,
        failed=len(deliveries) - ok,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        rps=len(deliveries) / elapsed if elapsed > 0 else 0.0,
    )


def compare_attempts(deliveries: Sequence[Delivery]) -> RetryReport:
    """Same status and same answer body on every attempt?"""
    first = deliveries[0]
    for other in deliveries[1:]:
        if (other.status, other.response) != (first.status, first.response):
            return RetryReport(
                len(deliveries),
                False,
                f"attempt 1 got {first.status} {_short(first.response)}, "
                f"attempt {other.attempt} got {other.status} {_short(other.response)}",
            )
    return RetryReport(len(deliveries), True, f"{first.status} {_short(first.response)}")


def _short(value: JSON) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:79] + "…"


def check_expectations(deliveries: Sequence[Delivery], expect: Expectations) -> list[str]:
    """Every assertion that did not hold, as a sentence (empty when all held)."""
    failures: list[str] = []
    for d in deliveries:
        label = f"delivery {d.attempt}" if len(deliveries) == 1 or d.attempt > 1 else "a delivery"
        if expect.verdict == "ok" and not d.ok:
            failures.append(f"expected ok, {label} got {d.error or d.status}")
        elif expect.verdict in ("pass", "inject", "drop"):
            got = d.verdict.kind if d.verdict else None
            if got != expect.verdict:
                failures.append(f"expected verdict {expect.verdict}, {label} got {got}")
        for path, value in expect.json:
            actual = get(d.response, path)
            if actual != value:
                failures.append(f"expected answer {path} = {json.dumps(value)}, got {json.dumps(actual)}")
        if expect.max_latency_ms is not None and d.latency_ms is not None and d.latency_ms > expect.max_latency_ms:
            failures.append(f"expected latency <= {expect.max_latency_ms:g} ms, {label} took {d.latency_ms:.1f} ms")
    return list(dict.fromkeys(failures))

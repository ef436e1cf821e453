"""`check` on GitHub Actions: `::error`/`::warning` workflow commands, and a Markdown job summary.

The runner reads workflow commands from stderr as well as stdout; they go to stderr, so `--json` keeps stdout
pure NDJSON. Text from the endpoint is escaped twice: control characters as for a terminal (the log shows
them), then the workflow-command encoding (`%`, CR, LF), so one answer can never start a command of its own.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from comethook_cli.outputs.escapes import safe

if TYPE_CHECKING:
    from comethook_cli.engine.checks import CheckResult
    from comethook_cli.outputs.wire import CheckSummary

_LEVEL = {"fail": "error", "warn": "warning"}
_MARK = {"pass": "✅ PASS", "fail": "❌ FAIL", "warn": "⚠️ WARN"}


def _data(text: str) -> str:
    return safe(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_commands(url: str, results: Sequence[CheckResult]) -> list[str]:
    """One `::error` per failed check and one `::warning` per warning, titled with the check's name."""
    return [
        f"::{_LEVEL[r.status]} title={_property(f'comethook check: {r.name}')}::{_data(f'{r.detail} ({url})')}"
        for r in results
        if r.status in _LEVEL
    ]


def _cell(text: str) -> str:
    return html.escape(safe(text).replace("\n", " ")).replace("|", "\\|")


def summary_markdown(url: str, results: Sequence[CheckResult], summary: CheckSummary, reached: bool = True) -> str:
    """The job summary: what was checked, the verdict in one line, and a table of every check."""
    outcome = f"**{summary.passed} of {summary.total} checks passed**, {summary.failed} failed, {summary.warnings} warning(s)"
    lines = [f"## comethook check: `{_cell(url)}`", ""]
    if not reached:
        lines += [f"❌ **{_cell(url)} could not be reached.**", ""]
    lines += [f"{outcome} in {summary.seconds:.2f} s.", "", "| check | result | latency | detail |", "|---|---|---|---|"]
    for r in results:
        latency = "-" if r.latency_ms is None else f"{r.latency_ms:.0f} ms"
        lines.append(f"| {_cell(r.name)} | {_MARK[r.status]} | {latency} | {_cell(r.detail)} |")
    return "\n".join(lines) + "\n"

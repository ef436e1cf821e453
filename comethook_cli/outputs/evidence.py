"""`payloads diff` for people: the findings per trigger as lines (rendered by terminal.Renderer.lines)."""

from __future__ import annotations

from collections.abc import Iterator

from comethook_cli.engine.evidence import Evidence

_SAID = {
    "live_only": ("+", "live deliveries carry it, the template lacks it"),
    "template_only": ("-", "the template has it, live deliveries lack it"),
    "type": ("~", "the type differs"),
}


def report_lines(evidence: Evidence, how_to_collect: str) -> Iterator[tuple[str, str]]:
    """(text, style) lines: a heading per trigger, a line per finding with its counts, the Content-Type casing."""
    left_out = ", ".join(f"{count} from {why}" for why, count in sorted(evidence.left_out.items()))
    if not evidence.diffs:
        yield "No live deliveries in the history" + (f" (left out: {left_out})." if left_out else "."), "bold"
        yield how_to_collect, ""
        return
    for diff in evidence.diffs:
        where = f"template {diff.template}" if diff.template else "no template in the catalog"
        kind = f", {diff.variant}" if diff.variant else ""
        yield f"{diff.trigger} ({diff.generation}{kind}): {diff.deliveries} live deliveries, {where}", "bold"
        if not diff.findings:
            yield "  same shape as the template", "green"
        for finding in diff.findings:
            mark, meaning = _SAID[finding.kind]
            types = "/".join(finding.live_types)
            if finding.kind == "type":
                what = f"live {types}, template {finding.template_type}"
            else:
                what = types or finding.template_type or ""
            yield f"  {mark} {finding.path}  {what}  in {finding.deliveries} of {finding.of}: {meaning}", ""
        casings = ", ".join(f"{media} ({count})" for media, count in sorted(diff.content_types.items()))
        yield f"  Content-Type: {casings}", "dim"
    if left_out:
        yield f"Left out: {left_out}.", "dim"
    yield "Share it in a bug report: `comethook payloads diff --json` holds paths, types and counts, no values.", "dim"

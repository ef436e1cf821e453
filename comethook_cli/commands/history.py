"""`comethook history`: list, show, export and clear what `listen` stored."""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from comethook_cli.errors import UsageError
from comethook_cli.models import DEFAULT_PORT, JSON, Exchange, iso_time
from comethook_cli.outputs.wire import Event, encode

if TYPE_CHECKING:
    from collections.abc import Callable

    from comethook_cli.engine.store import History

EXPORT_FORMATS = ("ndjson", "curl", "har")


def open_history() -> History:
    """The history database (an error with a hint when there is none yet); close it (`with`) when done."""
    from comethook_cli.engine.store import History

    return History()


def list_(limit: int, trigger: str | None, json_out: bool) -> None:
    """`history list`: the newest page."""
    from comethook_cli.engine.store import default_path
    from comethook_cli.outputs.views import view

    shown = view(json_out)
    if not default_path().exists():
        shown.exchanges([], "No history yet: `comethook listen` records every delivery.")
        return
    with open_history() as history:
        exchanges, _ = history.page(limit=limit, trigger=trigger)
        note = pruned_note(history)
        short = history.short_ids([e.id for e in exchanges]) if not json_out else {}
    shown.exchanges(exchanges, "No exchanges stored yet." if not trigger else f"No {trigger} exchanges stored.", short)
    if note:
        shown.note(note)  # stderr: stdout stays pure NDJSON


def pruned_note(history: History) -> str | None:
    """One line saying that retention deleted older exchanges (None when it never did)."""
    import time

    pruned = history.pruned()
    if pruned is None:
        return None
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(pruned.at))
    return (
        f"Older exchanges were pruned: {pruned.rows:,} deleted so far, the last at {when} (history kept to {pruned.retention}; "
        "see `comethook listen --history-max-mb/--history-max-age`)."
    )


def show(key: str, json_out: bool) -> None:
    """`history show ID`."""
    from comethook_cli.outputs.views import view

    with open_history() as history:
        exchange = history.get(key)
    view(json_out).exchange(exchange)


@dataclass(frozen=True)
class ExportFilter:
    """Which exchanges `history export` writes: one id, one trigger, since a time, the newest N (all when unset)."""

    id: str | None = None
    trigger: str | None = None
    since: str | None = None
    limit: int | None = None

    def select(self, history: History) -> Iterator[Exchange]:
        """The chosen exchanges, oldest first, streamed (--limit keeps only the newest N in memory)."""
        import collections

        if self.id is not None:
            yield history.get(self.id)
            return
        since = parse_since(self.since) if self.since else None
        chosen = (
            e
            for e in history.iter_all()
            if (self.trigger is None or e.info.trigger == self.trigger) and (since is None or e.received_at >= since)
        )
        if self.limit is None:
            yield from chosen
        else:
            yield from collections.deque(chosen, maxlen=self.limit)


def parse_since(text: str) -> float:
    """`--since 30m` / `2h` / `7d` / `90s` (ago) or `2024-05-01` / `2024-05-01T12:00` (local time) → epoch seconds."""
    import re
    import time
    from datetime import datetime

    ago = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if ago:
        return time.time() - float(ago.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[ago.group(2)]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise UsageError(
            f"Malformed --since {text!r}.", "Give a time ago (30m, 2h, 7d) or a date (2024-05-01, 2024-05-01T12:00)."
        ) from None


def export(fmt: str, output: str | None, only: ExportFilter | None = None) -> None:
    """`history export --format ndjson|curl|har [-o FILE]`: streamed, one stored row at a time."""
    from comethook_cli.engine.store import HistoryDamaged

    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"Unknown export format {fmt!r}.", f"Use one of: {', '.join(EXPORT_FORMATS)}.")
    only = only or ExportFilter()
    if only.since:
        parse_since(only.since)  # a malformed --since is said before the output file is opened
    written = 0

    def exchanges() -> Iterator[Exchange]:
        nonlocal written
        for exchange in only.select(history):
            yield exchange
            written += 1

    with open_history() as history, _output(output) as stream:
        try:
            if fmt == "har":
                write_har(stream, exchanges())
            else:
                for exchange in exchanges():
                    stream.write((encode(Event(exchange)) if fmt == "ndjson" else curl_command(exchange)) + "\n")
        except HistoryDamaged as damaged:
            damaged.message += f" The export stopped after {written:,} exchange(s); {output or 'the output'} is incomplete."
            raise
    if output is not None and output != "-":
        from comethook_cli.outputs.terminal import Renderer

        Renderer().note(f"Wrote {written:,} exchange(s) to {output}.", style="bold")


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if path is None or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        stream = Path(path).open("w", encoding="utf-8")  # noqa: SIM115 - closed by the with below
    except OSError as error:
        raise UsageError(f"Cannot write {path!r}: {error.strerror}.", "Check the directory exists and is writable.") from None
    with stream:
        yield stream


def target_of(exchange: Exchange, base: str = f"http://localhost:{DEFAULT_PORT}") -> str:
    """Where a stored exchange goes again by default: the app it was forwarded to, else the listener."""
    if exchange.forwarded_to:
        return exchange.forwarded_to
    return base + exchange.path + (f"?{exchange.query}" if exchange.query else "")


def curl_command(exchange: Exchange) -> str:
    """A curl command that reproduces the request (credentials left for you to add with -u)."""
    from comethook_cli.engine.replay import replay_headers

    parts = ["curl", "-X", exchange.method, shlex.quote(target_of(exchange))]
    for name, value in replay_headers(exchange).items():
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if any(name.lower() == "authorization" for name, _ in exchange.headers):
        parts += ["-u", "'USER:PASS'"]
    parts += ["--data-binary", shlex.quote(exchange.body.decode("utf-8", errors="replace"))]
    return " ".join(parts)


def har_entry(e: Exchange) -> dict[str, JSON]:
    """One exchange as a HAR 1.2 entry."""
    answer = e.response_body.decode("utf-8", errors="replace")
    content_type = next((v for n, v in e.response_headers if n.lower() == "content-type"), "application/json")
    request_type = next((v for n, v in e.headers if n.lower() == "content-type"), "application/json")
    return {
        "startedDateTime": iso_time(e.received_at),
        "time": round(e.latency_ms, 3),
        "request": {
            "method": e.method,
            "url": target_of(e),
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": n, "value": v} for n, v in e.headers],
            "queryString": [],
            "cookies": [],
            "headersSize": -1,
            "bodySize": len(e.body),
            "postData": {"mimeType": request_type, "text": e.body.decode("utf-8", errors="replace")},
        },
        "response": {
            "status": e.response_status,
            "statusText": "",
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": n, "value": v} for n, v in e.response_headers],
            "cookies": [],
            "content": {"size": len(e.response_body), "mimeType": content_type, "text": answer},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(e.response_body),
        },
        "cache": {},
        "timings": {"send": 0, "wait": round(e.latency_ms, 3), "receive": 0},
        "comment": f"{e.id} {e.info.trigger}" + (f" verdict {e.verdict.kind}" if e.verdict else ""),
    }


def write_har(stream: TextIO, exchanges: Iterator[Exchange]) -> int:
    """A HAR 1.2 log of the exchanges (browser dev tools open it), written entry by entry: the envelope
    by hand, so memory does not grow with the history. Returns how many entries were written."""
    import json

    from comethook_cli import __version__

    creator = json.dumps({"name": "comethook", "version": __version__})
    stream.write(f'{{\n  "log": {{\n    "version": "1.2",\n    "creator": {creator},\n    "entries": [')
    count = 0
    for exchange in exchanges:
        entry = json.dumps(har_entry(exchange), indent=2, ensure_ascii=False).replace("\n", "\n      ")
        stream.write(("," if count else "") + "\n      " + entry)
        count += 1
    stream.write("\n    ]\n  }\n}\n" if count else "]\n  }\n}\n")
    return count


def clear(yes: bool, confirm: Callable[[str], bool]) -> int:
    """`history clear`: ask first unless --yes; returns how many were removed (-1 when the user said no)."""
    with open_history() as history:
        count = history.count()
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(f"Refusing to delete {count} stored exchange(s) without confirmation.", "Pass --yes.")
            if not confirm(f"Delete {count} stored exchange(s)?"):
                return -1
        return history.clear()

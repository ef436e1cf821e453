"""`comethook history`: list, show, export and clear what `listen` stored."""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from comethook_cli.errors import UsageError
from comethook_cli.models import DEFAULT_PORT, HOP_BY_HOP, Exchange, iso_time
from comethook_cli.render import dumps

EXPORT_FORMATS = ("ndjson", "curl", "har")
#: Headers a replay or export must not copy: hop-by-hop, and those the client sets itself.
SKIP_HEADERS = HOP_BY_HOP | {"accept-encoding"}


def open_history() -> Any:
    """The history database (an error with a hint when there is none yet)."""
    from comethook_cli.store import History

    return History()


def list_(limit: int, trigger: str | None, json_out: bool) -> None:
    """`history list`."""
    history = open_history()
    exchanges = history.list(limit, trigger)
    if json_out:
        from comethook_cli.render import NdjsonWriter

        writer = NdjsonWriter()
        for exchange in exchanges:
            writer.write(exchange.to_json())
        return
    from comethook_cli.render import HistoryRenderer

    renderer = HistoryRenderer()
    if not exchanges:
        renderer.note("No exchanges stored yet." if not trigger else f"No {trigger} exchanges stored.")
        return
    renderer.table(exchanges)


def show(key: str, json_out: bool) -> None:
    """`history show ID`."""
    exchange = open_history().get(key)
    if json_out:
        from comethook_cli.render import NdjsonWriter

        NdjsonWriter().write({**exchange.to_json(), "raw": exchange.body.decode("utf-8", errors="replace")})
        return
    from comethook_cli.render import HistoryRenderer

    HistoryRenderer().exchange(exchange)


def export(fmt: str, output: str | None) -> None:
    """`history export --format ndjson|curl|har [-o FILE]`."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"Unknown export format {fmt!r}.", f"Use one of: {', '.join(EXPORT_FORMATS)}.")
    history = open_history()
    with _output(output) as stream:
        if fmt == "ndjson":
            for exchange in history.iter_all():
                stream.write(dumps(exchange.to_json()) + "\n")
        elif fmt == "curl":
            for exchange in history.iter_all():
                stream.write(curl_command(exchange) + "\n")
        else:
            import json

            stream.write(json.dumps(har(history.iter_all()), indent=2, ensure_ascii=False) + "\n")


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


def replay_headers(exchange: Exchange) -> dict[str, str]:
    """The stored request headers worth sending again (no hop-by-hop, no redacted Authorization)."""
    return {
        name: value
        for name, value in exchange.headers
        if name.lower() not in SKIP_HEADERS and not (name.lower() == "authorization" or "[redacted]" in value)
    }


def target_of(exchange: Exchange, base: str = f"http://localhost:{DEFAULT_PORT}") -> str:
    """Where a stored exchange goes again by default: the app it was forwarded to, else the listener."""
    if exchange.forwarded_to:
        return exchange.forwarded_to
    return base + exchange.path + (f"?{exchange.query}" if exchange.query else "")


def curl_command(exchange: Exchange) -> str:
    """A curl command that reproduces the request (credentials left for you to add with -u)."""
    parts = ["curl", "-X", exchange.method, shlex.quote(target_of(exchange))]
    for name, value in replay_headers(exchange).items():
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if any(name.lower() == "authorization" for name, _ in exchange.headers):
        parts += ["-u", "'USER:PASS'"]
    parts += ["--data-binary", shlex.quote(exchange.body.decode("utf-8", errors="replace"))]
    return " ".join(parts)


def har(exchanges: Iterator[Exchange]) -> dict[str, Any]:
    """A HAR 1.2 log of the exchanges (browser dev tools open it)."""
    from comethook_cli import __version__

    entries = []
    for e in exchanges:
        answer = e.response_body.decode("utf-8", errors="replace")
        content_type = next((v for n, v in e.response_headers if n.lower() == "content-type"), "application/json")
        request_type = next((v for n, v in e.headers if n.lower() == "content-type"), "application/json")
        url = target_of(e)
        entries.append(
            {
                "startedDateTime": iso_time(e.received_at),
                "time": round(e.latency_ms, 3),
                "request": {
                    "method": e.method,
                    "url": url,
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
        )
    return {"log": {"version": "1.2", "creator": {"name": "comethook", "version": __version__}, "entries": entries}}


def clear(yes: bool, confirm: Any) -> int:
    """`history clear`: ask first unless --yes; returns how many were removed (-1 when the user said no)."""
    history = open_history()
    count = history.count()
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"Refusing to delete {count} stored exchange(s) without confirmation.", "Pass --yes.")
        if not confirm(f"Delete {count} stored exchange(s)?"):
            return -1
    return int(history.clear())

"""The export formats of a stored Exchange: a curl command line, a HAR 1.2 entry and a streamed HAR log.

Pure functions of an Exchange (no terminal, no I/O but the stream given), shared by `history export` and the
inspector's "Copy as curl" and "Download HAR". An export travels: whatever the history kept (`listen
--keep-secrets`), its credentials are redacted.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import shlex
from collections.abc import Iterable, Iterator
from typing import TextIO

from comethook_cli.models import DEFAULT_PORT, JSON, Exchange, iso_time, without_redacted, without_secrets
from comethook_cli.outputs.wire import INVISIBLE, dumps, json_safe

#: What a shell word must not carry raw, lest a terminal showing the command act on it (or the one-line command break):
#: C0 controls, DEL, C1, bidi controls, line separators (and bytes that are not UTF-8, which come back as lone surrogates).
_UNPRINTABLE = re.compile(f"[\\x00-\\x1f{INVISIBLE}]")
#: Readable names in bash's ANSI-C quoting.
_SHELL_NAMES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def readable(exchange: Exchange) -> Exchange:
    """The exchange with its body parsed for display: a compressed body decoded first (the stored bytes stay)."""
    if exchange.payload is not None or not exchange.encoded:
        return exchange
    from comethook_cli import jsonbody
    from comethook_cli.engine.bodies import plain_body

    try:
        return dataclasses.replace(exchange, payload=jsonbody.parse(plain_body(exchange)))
    except ValueError:  # does not decode: shown as stored
        return exchange


def encoding_note(exchange: Exchange) -> str | None:
    """One line saying the body arrived compressed and is shown decoded (None when it did not)."""
    if not exchange.encoded:
        return None
    encoding = next(v for n, v in exchange.headers if n.lower() == "content-encoding")
    decoded = readable(exchange).payload is not None
    return f"The body arrived with Content-Encoding {encoding.strip()} ({len(exchange.body):,} bytes stored as they came); " + (
        "shown decoded." if decoded else "it does not decode, so it is shown as stored."
    )


def target_of(exchange: Exchange) -> str:
    """Where a stored exchange goes again by default (engine.replay's one rule): the app it was forwarded to, else
    the listener that received it (its real address; localhost on the default port for exchanges stored before it
    was kept)."""
    from comethook_cli.engine.replay import target_of

    return target_of(exchange, listener=exchange.listener or f"http://localhost:{DEFAULT_PORT}") or ""


def shell_word(text: str | bytes) -> str:
    """One shell word that stands for exactly these characters or bytes (none NUL: no argument can hold one):
    shlex-quoted when printable, else in bash's ANSI-C quoting (`$'...\\x1b...'`), so no control character or byte
    that is not UTF-8 reaches the output raw, and the word stays on one line."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", errors="surrogatepass")
    decoded = data.decode("utf-8", errors="surrogateescape")
    if not _UNPRINTABLE.search(decoded):
        return shlex.quote(decoded)
    quoted = []
    for char in decoded:
        if char in _SHELL_NAMES:
            quoted.append(_SHELL_NAMES[char])
        elif _UNPRINTABLE.search(char):
            quoted.append("".join(f"\\x{byte:02x}" for byte in char.encode("utf-8", errors="surrogateescape")))
        elif char in "\\'":
            quoted.append("\\" + char)
        else:
            quoted.append(char)
    return "$'" + "".join(quoted) + "'"


def curl_data(body: bytes) -> str:
    """curl's --data-binary argument for these exact bytes: a shell word, or, for a body holding NUL bytes (gzip does),
    a file that `printf` writes (`@<(printf '\\037\\213...')`, bash and zsh), since no argument can hold a NUL."""
    if b"\x00" not in body:
        return shell_word(body)
    decoded = body.decode("utf-8", errors="surrogateescape")
    out = []
    for char in decoded:
        if _UNPRINTABLE.search(char) or char in "\\'%":
            out.append("".join(f"\\{byte:03o}" for byte in char.encode("utf-8", errors="surrogateescape")))
        else:
            out.append(char)
    return "@<(printf '" + "".join(out) + "')"


def curl_command(exchange: Exchange) -> str:
    """A curl command that reproduces the request, its exact body bytes included (credentials left for you to add with -u)."""
    from comethook_cli.engine.replay import replay_headers

    exchange = without_secrets(exchange)  # whatever the history kept (`listen --keep-secrets`): an export travels
    # A redacted query value is left out, as `replay` leaves it out: curl would send `[redacted]` (or read it as a glob).
    parts = ["curl", "-X", shell_word(exchange.method), shell_word(without_redacted(target_of(exchange))[0])]
    for name, value in replay_headers(exchange).items():
        parts += ["-H", shell_word(f"{name}: {value}")]
    if any(name.lower() == "authorization" for name, _ in exchange.headers):
        parts += ["-u", "'USER:PASS'"]
    parts += ["--data-binary", curl_data(exchange.body)]
    return " ".join(parts)


def har_entry(e: Exchange) -> dict[str, JSON]:
    """One exchange as a HAR 1.2 entry (its credentials redacted, whatever the history kept)."""
    e = without_secrets(e)
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
            "postData": _post_data(e, request_type),
        },
        "response": {
            "status": e.response_status,
            "statusText": "",
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": n, "value": v} for n, v in e.response_headers],
            "cookies": [],
            "content": {"size": len(e.response_body), "mimeType": content_type, **_har_text(e.response_body)},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(e.response_body),
        },
        "cache": {},
        "timings": {"send": 0, "wait": round(e.latency_ms, 3), "receive": 0},
        "comment": f"{e.id} {e.info.trigger}" + (f" verdict {e.verdict.kind}" if e.verdict else ""),
    }


def _har_text(body: bytes) -> dict[str, JSON]:
    """HAR content: the text when it is UTF-8, else the bytes in base64 (HAR's `encoding`), never U+FFFD in their place."""
    try:
        return {"text": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"text": base64.b64encode(body).decode("ascii"), "encoding": "base64"}


def _post_data(e: Exchange, mime_type: str) -> dict[str, JSON]:
    """HAR postData: the body as text, decoded first when it arrived compressed (HAR has no base64 for requests)."""
    note = encoding_note(e)
    shown = readable(e)
    if note and shown.payload is not None:
        from comethook_cli.engine.bodies import plain_body

        return {"mimeType": mime_type, "text": plain_body(e).decode("utf-8"), "comment": note}
    return {"mimeType": mime_type, "text": e.body.decode("utf-8", errors="replace"), **({"comment": note} if note else {})}


def write_har(stream: TextIO, exchanges: Iterator[Exchange]) -> int:
    """A HAR 1.2 log of the exchanges (browser dev tools open it), written entry by entry: the envelope
    by hand, so memory does not grow with the history. Returns how many entries were written."""
    import json

    from comethook_cli import __version__

    creator = json.dumps({"name": "comethook", "version": __version__})
    stream.write(f'{{\n  "log": {{\n    "version": "1.2",\n    "creator": {creator},\n    "entries": [')
    count = 0
    for exchange in exchanges:
        # json_safe: DEL, C1 and bidi controls as \u escapes (json.dumps leaves them raw), so the file is safe to `cat`.
        entry = json_safe(json.dumps(har_entry(exchange), indent=2, ensure_ascii=False)).replace("\n", "\n      ")
        stream.write(("," if count else "") + "\n      " + entry)
        count += 1
    stream.write("\n    ]\n  }\n}\n" if count else "]\n  }\n}\n")
    return count


class CompactHar:
    """A HAR 1.2 log on one line, made a page of exchanges at a time (the inspector's "Download HAR", streamed from
    the history): `start()`, `entries(page)` for each page, then `END`."""

    END = "]}}\n"

    def __init__(self) -> None:
        self.count = 0

    @staticmethod
    def start() -> str:
        """The log's opening, up to its first entry."""
        from comethook_cli import __version__

        creator = dumps({"name": "comethook", "version": __version__})
        return f'{{"log":{{"version":"1.2","creator":{creator},"entries":['

    def entries(self, page: Iterable[Exchange]) -> str:
        """The page's entries, each after a comma but the log's first."""
        parts = []
        for exchange in page:
            parts.append(("," if self.count else "") + dumps(har_entry(exchange)))
            self.count += 1
        return "".join(parts)

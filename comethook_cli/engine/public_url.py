"""The public URL: one a user brings (`--public-url`, their own tunnel) checked, and the last one announced remembered.

CometChat's webhook URL can only be changed in its Dashboard, so a public URL that differs from the last run's means
the Dashboard still points at the old one. The last URL `listen` announced is kept per history home
($COMETHOOK_HOME/public-url, a private file), so the banner can say so.
"""

from __future__ import annotations

import contextlib
import json
from urllib.parse import urlsplit

from comethook_cli.errors import UsageError

#: The file, under the history home, that holds the last public URL announced.
FILE_NAME = "public-url"
#: Bytes read of that file at most (it holds one URL; anything bigger is not ours).
MAX_FILE = 16 * 1024


def checked_public_url(given: str) -> str:
    """`--public-url` as the URL comethook shows and probes: http(s), a host, no credentials, query or fragment; the
    trailing slash taken off (the banner adds /webhook). UsageError otherwise."""
    url = given.strip()
    hint = "Give the public address of your own tunnel, e.g. --public-url https://hooks.example.com."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        raise UsageError(f"Malformed --public-url {given!r}.", hint) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UsageError(f"--public-url {given!r} is not an http:// or https:// URL.", hint)
    if not parts.hostname:
        raise UsageError(f"--public-url {given!r} names no host.", hint)
    if parts.username is not None or parts.password is not None:
        raise UsageError(
            f"--public-url {given!r} holds credentials.",
            "Leave them out: CometChat's webhook has Basic auth settings of its own (and `listen --basic-auth`).",
        )
    if parts.query or parts.fragment or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise UsageError(f"--public-url {given!r} has a query, a fragment or spaces.", hint)
    return url.rstrip("/")


def remember(url: str) -> str | None:
    """Keep `url` as the last public URL announced; return the one kept before when it differs (None otherwise, and
    when nothing was kept or the file cannot be read or written: a lost reminder is not worth an error)."""
    from comethook_cli.engine.home import home, make_private_directory, write_private

    path = home() / FILE_NAME
    previous: str | None = None
    with contextlib.suppress(OSError, ValueError):
        with path.open("rb") as file:
            document = json.loads(file.read(MAX_FILE))
        kept = document.get("url") if isinstance(document, dict) else None
        previous = kept if isinstance(kept, str) and kept else None
    if previous == url:
        return None
    with contextlib.suppress(OSError):
        make_private_directory(path.parent)
        write_private(path, json.dumps({"url": url}) + "\n")
    return previous

"""The last public URL announced, remembered (a user's own tunnel's URL is parsed by engine/values.public_url).

CometChat's webhook URL can only be changed in its Dashboard, so a public URL that differs from the last run's means
the Dashboard still points at the old one. The last URL `listen` announced is kept per history home
($COMETHOOK_HOME/public-url, a private file), so the banner can say so.
"""

from __future__ import annotations

import contextlib
import json

#: The file, under the history home, that holds the last public URL announced.
FILE_NAME = "public-url"
#: Bytes read of that file at most (it holds one URL; anything bigger is not ours).
MAX_FILE = 16 * 1024


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

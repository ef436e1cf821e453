"""The one reader of a file a user, a project or a stranger names (--body, --rules, inject:@FILE, a fixture): bounded,
so /dev/zero or a huge file ends in a usage error, never in memory spent. The CLI takes it from cli/options."""

from __future__ import annotations

from comethook_cli.errors import UsageError

#: The most a rules file, an `inject:@FILE` or a fixture may hold: far above any real one, and a project file can name
#: any file.
MAX_USER_FILE = 1024 * 1024


def read_user_file(
    path: str,
    what: str,
    hint: str = "Check the path.",
    limit: int | None = MAX_USER_FILE,
    too_large: str = "It should hold a little JSON: check the path.",
) -> bytes:
    """The bytes of a file a user (or a project file) names for `what`, or a UsageError: missing, unreadable, over `limit`."""
    try:
        with open(path, "rb") as file:
            raw = file.read() if limit is None else file.read(limit + 1)  # a bounded read: /dev/zero ends too
    except OSError as error:
        raise UsageError(f"Cannot read {what} {path!r}: {error.strerror or error}.", hint) from None
    if limit is not None and len(raw) > limit:
        raise UsageError(f"{what[:1].upper()}{what[1:]} {path!r} is larger than {limit / 1048576:g} MiB.", too_large)
    return raw

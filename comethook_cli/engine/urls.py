"""Target URLs: what a user types (`8000`, `:8000/hook`, a full URL) made into a checked URL, and user info
(`user:pw@`) taken out of a URL into an Authorization header of comethook's own making."""

from __future__ import annotations

import re
from urllib.parse import unquote

from comethook_cli.engine.auth import basic_value
from comethook_cli.errors import UsageError
from comethook_cli.models import redact_url as redact_url  # beside the URL normaliser too, where its callers look

#: A URL's scheme and its whole user info (`user`, `user:pw`), up to the authority's last `@`.
_ANY_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)@")


def normalize_url(target: str) -> str:
    """`8000` → http://localhost:8000, `:8000/hook` → http://localhost:8000/hook, `/hook` → http://localhost:8000/hook."""
    target = target.strip()
    if not target:
        raise UsageError("No target URL given.", "Pass --to URL, e.g. --to http://localhost:8000/webhook.")
    if target.isdigit():
        url = f"http://localhost:{target}"
    elif target.startswith(":"):
        url = f"http://localhost{target}"
    elif target.startswith("/"):
        url = f"http://localhost:8000{target}"
    elif "://" not in target:
        if MALFORMED_SCHEME.match(target):  # http//host, https:/host: a typo, not a host named "http"
            raise UsageError(
                f"Malformed URL {target!r}.", "Write the scheme as http:// or https://, e.g. http://localhost:8000/hook."
            )
        url = f"http://{target}"
    elif not target.lower().startswith(("http://", "https://")):
        raise UsageError(f"Unsupported URL {target!r}.", "Use an http:// or https:// URL.")
    else:
        url = target
    return checked_url(url, target)


#: A target that starts like a scheme but is not one (`http//host`, `https:/host`, `http:host`).
MALFORMED_SCHEME = re.compile(r"^https?(?::/?(?!/)|//)", re.IGNORECASE)


def checked_url(url: str, given: str) -> str:
    """The URL when it names a host and a valid port; a UsageError (exit 2, at start-up) otherwise."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        raise UsageError(
            f"Malformed URL {given!r}: the port is not a number from 0 to 65535.", "e.g. http://localhost:8000/hook."
        ) from None
    if not parts.hostname:
        raise UsageError(f"Malformed URL {given!r}: it names no host.", "e.g. http://localhost:8000/hook, or just 8000.")
    try:
        parts.hostname.encode("idna")  # what the resolver does first: an empty label or one past 63 characters raised there
    except UnicodeError:
        raise UsageError(
            f"Malformed URL {given!r}: its host name has an empty label or one longer than 63 characters.",
            "e.g. http://localhost:8000/hook.",
        ) from None
    return url


def take_credentials(url: str) -> tuple[str, str | None]:
    """(the URL without its user info, the `USER:PASSWORD` it held, percent-decoded; None when it held none).

    Every request comethook makes sends URL credentials as an Authorization header of its own making (see
    `url_authorization`), never through aiohttp's URL handling, which raises when a request also has that header."""
    if "@" not in url:
        return url, None
    found = _ANY_USERINFO.match(url)
    if found is None:
        return url, None
    user, _, password = found.group(2).partition(":")
    return found.group(1) + url[found.end() :], f"{unquote(user)}:{unquote(password)}"


def url_authorization(
    url: str, headers: dict[str, str], flag: str = "--to", others: str = "--basic-auth / -H Authorization"
) -> tuple[str, dict[str, str]]:
    """(the URL without its user info, `headers` with the Basic auth made of it); a UsageError when `headers` already
    hold an Authorization, since a request carries one: which to send would be a guess."""
    bare, credentials = take_credentials(url)
    if credentials is None:
        return url, headers
    if any(name.lower() == "authorization" for name in headers):
        raise UsageError(
            f"Two sets of credentials: the user info in {flag} {redact_url(url)} and {others}.",
            f"Give one of them: drop the user:password@ from {flag}, or drop {others}.",
        )
    return bare, {**headers, "Authorization": basic_value(credentials)}

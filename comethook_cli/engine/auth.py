"""HTTP Basic auth as comethook sends it: `USER:PASSWORD` made into an Authorization header value."""

from __future__ import annotations

import base64

from comethook_cli.errors import UsageError


def basic_value(credentials: str) -> str:
    """`USER:PASSWORD` → the value of an `Authorization: Basic` header (UTF-8, as RFC 7617 allows), unchecked."""
    return "Basic " + base64.b64encode(credentials.encode("utf-8", errors="surrogatepass")).decode("ascii")


def basic_auth_header(credentials: str) -> str:
    """`USER:PASS` → the value of an `Authorization: Basic` header."""
    user, sep, _ = credentials.partition(":")
    if not sep or not user:
        raise UsageError("Malformed Basic auth credentials.", "Write them as USER:PASS (--basic-auth or COMETHOOK_BASIC_AUTH).")
    return basic_value(credentials)

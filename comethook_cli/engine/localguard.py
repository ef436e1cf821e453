"""The guard of comethook's local web servers (the inspector and `emulate`): which browser pages may talk to them.

Both servers are for this machine's tools, never for another site's page open in the developer's browser:

* a `Host` check (DNS rebinding): only the loopback names (`127.0.0.1`, `localhost`, `[::1]`) and the bound
  address, with the bound port, get an answer; bound to a wildcard (`0.0.0.0`, `::`), any IP literal too (a
  rebinding page must use a DNS name, so an IP literal in `Host` cannot be one);
* a request is cross-origin when the browser says so (`Sec-Fetch-Site: cross-site` or `same-site`) or carries an
  `Origin` that is not this server's. A cross-origin change is refused; a cross-origin read needs the server's
  token (a page of another site cannot set a header on a no-cors request, so it cannot have it);
* a request with neither header (curl, a backend SDK, a test) is not a browser's cross-origin request and passes;
  a server whose own page sends its changes can also demand the Origin and the token on every change.

One piece for both servers (the inspector's server.py and engine/emulator/server.py call `LocalGuard.refusal`).
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from aiohttp import web

#: The names every local server answers to, whatever it is bound to.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
#: Bound to one of these, the server is reachable by any of the machine's addresses.
WILDCARDS = frozenset({"", "0.0.0.0", "::"})
SAFE_METHODS = frozenset({"GET", "HEAD"})
#: `Sec-Fetch-Site` values of a request another site's page made (`same-site`: another port of localhost).
CROSS_SITE = frozenset({"cross-site", "same-site"})


def split_host(value: str) -> tuple[str, int | None] | None:
    """A Host header's name (brackets of an IPv6 literal removed, lowercased) and port; None when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else None
    else:
        name, sep, port_text_ = value.partition(":")
        port_text = port_text_ if sep else None
    if not name:
        return None
    if port_text is None:
        return name, None
    if not port_text.isdigit() or len(port_text) > 5:
        return None
    return name, int(port_text)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _netloc(name: str, port: int) -> str:
    return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"


@dataclass
class LocalGuard:
    """Who may talk to a local server bound to `host`:`port` (set `port` once bound)."""

    host: str
    port: int
    #: A per-run secret: cross-origin reads need it, and changes too with `changes_need_token`.
    token: str | None = None
    token_header: str = "X-Comethook-Token"
    #: Changes must carry a same-origin Origin and the token (the inspector: only its own page changes things).
    changes_need_token: bool = False
    #: More names to answer to, given by the user (`emulate --allow-host emulator` for a container's service name).
    extra_names: frozenset[str] = frozenset()

    def names(self) -> frozenset[str]:
        """The host names (no port) this server answers to, beyond IP literals when bound to a wildcard."""
        bound = self.host.strip("[]").lower()
        return LOOPBACK_NAMES | self.extra_names | ({bound} if bound not in WILDCARDS else frozenset())

    def host_allowed(self, value: str) -> bool:
        """Whether a Host header names this server (the DNS rebinding check)."""
        parsed = split_host(value)
        if parsed is None:
            return False
        name, port = parsed
        if port != self.port and not (port is None and self.port == 80):
            return False
        return name in self.names() or (self.host.strip("[]") in WILDCARDS and _is_ip(name))

    def origins(self) -> frozenset[str]:
        """The Origin values of this server's own pages."""
        return frozenset(f"http://{_netloc(name, self.port)}" for name in self.names())

    def own_origin(self, origin: str) -> bool:
        """Whether an Origin header is this server's own (by name, or by IP literal when bound to a wildcard)."""
        if not origin.startswith("http://"):
            return False
        return self.host_allowed(origin.removeprefix("http://")) and "/" not in origin.removeprefix("http://")

    def cross_origin(self, request: web.BaseRequest) -> bool:
        """Whether a browser made this request for another site's page (Sec-Fetch-Site, or a foreign Origin)."""
        if request.headers.get("Sec-Fetch-Site", "").strip().lower() in CROSS_SITE:
            return True
        origin = request.headers.get("Origin")
        return origin is not None and not self.own_origin(origin.strip())

    def has_token(self, request: web.BaseRequest) -> bool:
        """Whether the request carries this run's token (compared in constant time)."""
        if self.token is None:
            return False
        return hmac.compare_digest(request.headers.get(self.token_header, "").encode(), self.token.encode())

    def refusal(self, request: web.BaseRequest) -> str | None:
        """Why this request is refused (a sentence for a 403), or None when it may go on."""
        if not self.host_allowed(request.headers.get("Host", "")):
            names = ", ".join(_netloc(name, self.port).rsplit(":", 1)[0] for name in sorted(self.names()))
            return f"this server answers to {names} only (Host header)"
        if request.method not in SAFE_METHODS:
            if self.cross_origin(request):
                return "a change from another site's page is refused (Origin / Sec-Fetch-Site)"
            if self.changes_need_token:
                if "Origin" not in request.headers:
                    return "a change needs a same-origin Origin header"
                if not self.has_token(request):
                    return f"a change needs this run's token in {self.token_header} (the page has it)"
        elif self.cross_origin(request) and not self.has_token(request):
            if self.token is None:
                return "another site's page may not read this server (Origin / Sec-Fetch-Site)"
            return f"a read from another site's page needs this run's token in {self.token_header}"
        return None

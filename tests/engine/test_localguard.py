"""engine/localguard.py, the guard the inspector and `emulate` share: which Host names pass, which requests are
another site's page's. (Each server's tests drive it over real HTTP; these pin the rules themselves.)"""

from __future__ import annotations

from aiohttp.test_utils import make_mocked_request

from comethook_cli.engine.localguard import LocalGuard, split_host


def test_host_names_are_parsed_strictly() -> None:
    assert split_host("LocalHost:8780") == ("localhost", 8780)
    assert split_host("[::1]:8780") == ("::1", 8780)
    assert split_host("127.0.0.1") == ("127.0.0.1", None)
    for bad in ("", ":80", "[::1", "[::1]x", "a:b", "a:123456", "a:-1"):
        assert split_host(bad) is None, bad


def test_a_wildcard_bind_takes_ip_literals_but_never_a_dns_name() -> None:
    guard = LocalGuard("0.0.0.0", 8780)
    for host in ("127.0.0.1:8780", "192.168.1.5:8780", "[::1]:8780", "localhost:8780"):
        assert guard.host_allowed(host), host
    for host in ("evil.example:8780", "192.168.1.5:9999", "127.0.0.1", "localhost.evil.example:8780"):
        assert not guard.host_allowed(host), host
    named = LocalGuard("10.0.0.2", 8780)
    assert named.host_allowed("10.0.0.2:8780") and named.host_allowed("localhost:8780")
    assert not named.host_allowed("10.0.0.3:8780")


def test_reads_and_changes_of_another_sites_page() -> None:
    guard = LocalGuard("127.0.0.1", 8780, token="secret", changes_need_token=True)
    own = {"Host": "127.0.0.1:8780"}

    def refusal(method: str, **headers: str) -> str | None:
        return guard.refusal(make_mocked_request(method, "/api/x", headers={**own, **headers}))

    assert refusal("GET") is None and refusal("GET", **{"Sec-Fetch-Site": "same-origin"}) is None
    assert refusal("GET", **{"Sec-Fetch-Site": "cross-site"}) is not None
    assert refusal("GET", **{"Sec-Fetch-Site": "cross-site", "X-Comethook-Token": "secret"}) is None
    assert refusal("GET", Origin="http://localhost:8780") is None
    assert refusal("POST", Origin="http://127.0.0.1:8780", **{"X-Comethook-Token": "secret"}) is None
    assert refusal("POST", Origin="http://evil.example", **{"X-Comethook-Token": "secret"}) is not None
    assert refusal("POST", **{"X-Comethook-Token": "secret"}) is not None  # the inspector demands the Origin
    emulate = LocalGuard("127.0.0.1", 8780)
    assert emulate.refusal(make_mocked_request("POST", "/", headers=own)) is None  # curl: no Origin, no token
    cross = make_mocked_request("POST", "/", headers={**own, "Sec-Fetch-Site": "cross-site"})
    assert emulate.refusal(cross) is not None

"""The listener's Basic auth: asked before anything else, on every path and method."""

from __future__ import annotations

from typing import Any

import aiohttp


async def test_basic_auth_is_asked_before_anything_else_on_every_path_and_method(start: Any) -> None:
    running = await start(basic_auth="u:pw")
    async with aiohttp.ClientSession() as session:
        for method in ("GET", "PUT", "OPTIONS", "DELETE"):
            async with session.request(method, running.url) as response:
                assert response.status == 401, method  # today: 405 for all but POST, before any credentials
        async with session.get(running.url, headers={"Authorization": "Basic dTpwdw=="}) as response:
            assert response.status == 405

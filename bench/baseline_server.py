"""The baseline: a bare aiohttp server that reads the body and answers {} (what comethook is measured against).

python bench/baseline_server.py PORT            # asyncio's own loop: the headline baseline
python bench/baseline_server.py PORT --uvloop   # the same on uvloop (comethook's loop when it is installed)
"""

from __future__ import annotations

import sys

from aiohttp import web


async def answer(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({})


def main() -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    loop = None
    if "--uvloop" in sys.argv:
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, loop=loop)


if __name__ == "__main__":
    main()

"""The live inspector: a local web page (and the JSON API behind it) over the hub and the history.

`server.Inspector` is the aiohttp server (loopback only, Host-checked, token and Origin for changes, a strict
CSP, one bounded hub queue per event-stream client); `api.Api` answers the JSON API; `static/` holds the page,
hand-written and served from the package (no CDN, no external font: it works offline).
"""

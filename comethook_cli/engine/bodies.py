"""Request bodies' Content-Encoding: undone (gzip, deflate) within a limit, so a decompression bomb stops there.

The listener decodes a body to read its JSON; the exact bytes that arrived are what it stores and forwards, so
whoever reads a stored exchange back (`history`, `replay`) decodes it again with `plain_body`.
"""

from __future__ import annotations

import zlib

from comethook_cli.models import Exchange

#: Content-Encoding values the listener decodes (to read the JSON; the exact bytes are what it stores and forwards).
DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
#: How far a stored compressed body may inflate when it is read back (the listener took it at most --max-body decoded).
STORED_DECODE_LIMIT = 64 * 1024 * 1024


class UnsupportedEncoding(ValueError):
    """A Content-Encoding the listener cannot decode."""


class DecodedTooLarge(ValueError):
    """A compressed body that inflates past the limit."""


def decode_body(raw: bytes, content_encoding: str, limit: int) -> bytes:
    """The body with its Content-Encoding undone (gzip, deflate), never more than `limit` bytes out.

    Raises DecodedTooLarge past the limit (a decompression bomb stops there), UnsupportedEncoding for
    other codings, and ValueError for data that does not decode."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip().lower() not in ("", "identity")]
    if len(codings) > 2:
        raise UnsupportedEncoding(content_encoding)
    data = raw
    for coding in reversed(codings):
        if coding not in DECODERS:
            raise UnsupportedEncoding(coding)
        data = _inflate(data, DECODERS[coding], limit)
    return data


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    try:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        if wbits == zlib.MAX_WBITS:  # "deflate" sent as raw deflate, without the zlib header: some clients do
            return _inflate(data, -zlib.MAX_WBITS, limit)
        raise ValueError("not valid compressed data") from None
    if len(out) > limit:
        raise DecodedTooLarge
    if not inflater.eof or inflater.unused_data:
        raise ValueError("truncated or trailing data")
    return out


def plain_body(exchange: Exchange, limit: int = STORED_DECODE_LIMIT) -> bytes:
    """The exchange's body with its Content-Encoding undone (the stored bytes when it has none); ValueError when it
    does not decode (UnsupportedEncoding, DecodedTooLarge are ValueErrors too)."""
    if not exchange.encoded:
        return exchange.body
    encoding = next(v for n, v in exchange.headers if n.lower() == "content-encoding")
    return decode_body(exchange.body, encoding, limit)

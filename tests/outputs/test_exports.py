"""History exports: never a raw control character, and binary bodies kept exact (curl reproduces the bytes)."""

from __future__ import annotations

import json
import struct
import subprocess
import zlib
from typing import Any

from tests.conftest import AFTER, post


def gzip_with_comment(data: bytes, comment: bytes) -> bytes:
    """A gzip member whose header carries a comment (FCOMMENT): the listener accepts it; the bytes are stored as such."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflate.compress(data) + deflate.flush()
    header = b"\x1f\x8b\x08\x10" + b"\x00\x00\x00\x00" + b"\x00\x03" + comment + b"\x00"
    return header + body + struct.pack("<II", zlib.crc32(data), len(data))


RAW_CONTROLS = set(range(0x00, 0x09)) | set(range(0x0B, 0x20)) | {0x7F} | set(range(0x80, 0xA0))


def controls_in(text: str) -> list[str]:
    return [c for c in text if ord(c) in RAW_CONTROLS]


def run_curl_line(line: str) -> bytes:
    """What an exported curl command would send as its body: bash runs it with `curl` as a function printing it."""
    shim = (
        'curl() { while [ $# -gt 0 ]; do if [ "$1" = --data-binary ]; then shift; case "$1" in @*) cat "${1#@}";; '
        '*) printf %s "$1";; esac; fi; shift; done; }\n'
    )
    return subprocess.run(["bash", "-c", shim + line], capture_output=True, check=True, timeout=10).stdout


async def test_exports_escape_control_characters_and_curl_reproduces_the_exact_bytes(start: Any, cli: Any) -> None:
    running = await start()
    hostile_text = json.dumps(
        {"trigger": "after_message", "data": {"text": "del \x7f csi \u009b2J bel \x07"}}, ensure_ascii=False
    )
    bodies = [hostile_text.encode(), gzip_with_comment(AFTER, b"\x1b]0;pwned\x07\x1b[2J")]
    for body, headers in zip(bodies, ({}, {"Content-Encoding": "gzip"}), strict=True):
        assert (await post(running.url, body, headers))[0] == 200
    curl = await cli.run("history", "export", "--format", "curl")
    assert curl.exit_code == 0 and controls_in(curl.stdout) == []  # today: raw ESC, BEL, C1 and DEL
    lines = curl.stdout.splitlines()
    assert len(lines) == 2
    assert [run_curl_line(line) for line in lines] == bodies  # today: the gzip bytes come out with U+FFFD in them
    har = await cli.run("history", "export", "--format", "har")
    assert har.exit_code == 0 and controls_in(har.stdout) == []
    entries = json.loads(har.stdout)["log"]["entries"]
    assert entries[0]["request"]["postData"]["text"] == hostile_text  # the same value, escaped in the file
    assert json.loads(entries[1]["request"]["postData"]["text"]) == json.loads(AFTER)  # decoded, and said so
    assert "Content-Encoding gzip" in entries[1]["request"]["postData"]["comment"]

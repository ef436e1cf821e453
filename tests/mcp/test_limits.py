"""comethook_cli/mcp/limits.py: results bounded in bytes with the truncation said, secrets scrubbed from them."""

from __future__ import annotations

import base64

from comethook_cli.mcp.limits import MAX_RESULT_BYTES, Secrets, bound, size


def test_a_small_result_is_left_as_it_is() -> None:
    document = {"delivery": {"response": {"a": 1}}, "exchanges": [1, 2, 3]}
    assert bound(document) is document


def test_a_big_body_is_cut_to_a_preview_and_the_cut_is_said() -> None:
    document = {"exchange": {"id": "x1", "raw": "a" * 500_000, "body": {"text": "b" * 300_000}}}
    result = bound(document)
    assert size(result) <= MAX_RESULT_BYTES
    assert result["exchange"]["id"] == "x1"
    assert result["exchange"]["raw"].startswith("aaa") and "500000 characters in all" in result["exchange"]["raw"]
    assert "exchange.raw" in result["truncated"] and "Narrow the request" in result["truncated"]


def test_a_long_list_keeps_its_first_items() -> None:
    document = {"exchanges": [{"id": n, "body": "x" * 2000} for n in range(200)], "next": 5}
    result = bound(document)
    assert size(result) <= MAX_RESULT_BYTES
    assert [e["id"] for e in result["exchanges"]] == list(range(len(result["exchanges"])))
    assert 0 < len(result["exchanges"]) < 200 and result["next"] == 5
    assert "exchanges (first" in result["truncated"]


def test_secrets_are_scrubbed_in_every_form_from_values_and_keys() -> None:
    secrets = Secrets()
    secrets.add("user:pa55word")
    secrets.add("tok-123456")
    basic = base64.b64encode(b"user:pa55word").decode()
    document = {"seen": {"Authorization": f"Basic {basic}", "tok-123456": ["pa55word", "user:pa55word"]}, "n": 3}
    assert secrets.scrub(document) == {"seen": {"Authorization": "Basic ***", "***": ["***", "***"]}, "n": 3}
    short = Secrets()
    short.add("a:b")  # too short to scrub from text without blanking every such letter
    assert short.scrub("a b a:b") == "a b a:b"

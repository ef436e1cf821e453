"""Command bodies: turn parsed options into calls of the core modules and the renderer.

cli.py declares options and calls these; the core modules (sender, listener, store ...) never print.
This package holds the helpers several commands share; each command's body has a module of its own.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from comethook_cli.errors import UsageError
from comethook_cli.payloads import REGIONS, BuildOptions, parse_set


def build_options(
    type_: str,
    text: str | None,
    sender: str,
    receiver: str,
    group: str | None,
    webhook_id: str,
    app_id: str,
    region: str,
    sets: Sequence[str] | None,
) -> BuildOptions:
    """BuildOptions from the shared builder flags, validated."""
    if region not in REGIONS:
        raise UsageError(f"Unknown region {region!r}.", f"Use one of: {', '.join(REGIONS)}.")
    return BuildOptions(
        type=type_,
        text=text,
        sender=sender,
        receiver=receiver,
        group=group,
        webhook_id=webhook_id,
        app_id=app_id,
        region=region,
        sets=tuple(parse_set(s) for s in sets or ()),
    )


def payloads_list(json_out: bool) -> None:
    """`comethook payloads list`."""
    from comethook_cli.payloads import catalog

    if json_out:
        from comethook_cli.render import NdjsonWriter

        writer = NdjsonWriter()
        for t in catalog():
            writer.write({"trigger": t.trigger, "generation": t.generation, "family": t.family, "description": t.description})
        return
    from comethook_cli.render import Renderer

    Renderer().payload_table(catalog())


def payloads_show(trigger: str, legacy: bool, options: BuildOptions) -> None:
    """`comethook payloads show TRIGGER`."""
    from comethook_cli.payloads import build, find_template
    from comethook_cli.render import Renderer

    Renderer().document(build(find_template(trigger, legacy), options))


def read_body(source: str) -> tuple[bytes, Any]:
    """The bytes of `--body FILE|-` and what they parse to (strict JSON, as the listener reads it)."""
    from comethook_cli import jsonbody

    try:
        raw = sys.stdin.buffer.read() if source == "-" else open(source, "rb").read()  # noqa: SIM115
    except OSError as error:
        raise UsageError(
            f"Cannot read --body {source!r}: {error.strerror or error}.", "Check the path, or pass - for stdin."
        ) from None
    try:
        return raw, jsonbody.parse(raw)
    except jsonbody.JsonBodyError as error:
        raise UsageError(
            f"--body {source!r} is not valid JSON: {error}.", "Fix the file, or start from `comethook payloads show`."
        ) from None


def encode(payload: Any) -> bytes:
    """A payload as CometChat sends it: compact UTF-8 JSON."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def normalize_url(target: str) -> str:
    """`8000` → http://localhost:8000, `:8000/hook` → http://localhost:8000/hook, `/hook` → http://localhost:8000/hook."""
    target = target.strip()
    if not target:
        raise UsageError("No target URL given.", "Pass --to URL, e.g. --to http://localhost:8000/webhook.")
    if target.isdigit():
        return f"http://localhost:{target}"
    if target.startswith(":"):
        return f"http://localhost{target}"
    if target.startswith("/"):
        return f"http://localhost:8000{target}"
    if "://" not in target:
        return f"http://{target}"
    if not target.startswith(("http://", "https://")):
        raise UsageError(f"Unsupported URL {target!r}.", "Use an http:// or https:// URL.")
    return target

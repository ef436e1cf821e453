"""Dotted paths in a JSON body: `--set` (a path that exists), `--add` (a path made on purpose), `--unset`, and the
key paths of a body (what `payloads diff` compares and what a typo's "did you mean" picks from).

A path is dotted; a numeric part is a list index. `--set` only ever changes a path that exists, so a typo
(`data.mesage.id`) is a usage error naming the nearest path instead of a new branch nobody asked for.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from typing import Any

from comethook_cli import jsonbody
from comethook_cli.errors import InvalidSetting

#: The order overrides apply in: what is added exists for a --set to change, and --unset has the last word.
ORDER = ("add", "set", "unset")


def parse_set(expression: str, setting: str = "set") -> tuple[str, Any]:
    """`PATH=VALUE` → (path, value); VALUE is JSON when it parses as JSON, else the string itself (`setting` names it:
    `set`, `add`, or `expect_json`)."""
    path, sep, raw = expression.partition("=")
    path = path.strip()
    if not sep or not path or any(not part for part in path.split(".")):
        raise InvalidSetting(
            setting, ".", "Write it as PATH=VALUE with a dotted path, e.g. {example}.", value=expression, before="Malformed ",
            example="status=queued" if setting == "expect_json" else "data.text=hello",
        )  # fmt: skip
    try:
        value: Any = jsonbody.parse(raw)  # strict: NaN stays the string "NaN", never a float that is not JSON
    except jsonbody.JsonBodyError:
        value = raw
    return path, value


def parse_unset(path: str) -> str:
    """A `--unset PATH`, checked: a dotted path with no empty part."""
    path = path.strip()
    if not path or any(not part for part in path.split(".")):
        raise InvalidSetting("unset", ".", "Give a dotted path, e.g. {example}.", value=path, before="Malformed ",
                             example="data.message.data.metadata")  # fmt: skip
    return path


def key_paths(document: Any, prefix: str = "", lists: str = "index") -> Iterator[str]:
    """Every path in a body, parents before children. `lists="index"` names list items by index (`a.0.b`, what --set
    takes); `lists="[]"` names every item the same (`a[].b`, a shape's path)."""
    if isinstance(document, dict):
        for key, value in document.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from key_paths(value, path, lists)
    elif isinstance(document, list):
        for index, value in enumerate(document):
            path = f"{prefix}[]" if lists == "[]" else (f"{prefix}.{index}" if prefix else str(index))
            if lists != "[]":
                yield path
            yield from key_paths(value, path, lists)


def nearest_path(document: Any, path: str) -> str | None:
    """The existing path most like `path` (a typo's likely meaning), or the deepest existing part of it."""
    known = list(dict.fromkeys(key_paths(document)))
    close = difflib.get_close_matches(path, known, n=1, cutoff=0.75)
    if close:
        return close[0]
    parts = path.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        if _exists(document, parts[:depth]):
            return ".".join(parts[:depth])
    return None


def set_path(document: Any, path: str, value: Any, create: bool = False, setting: str = "set") -> None:
    """Set `value` at the dotted `path`, which must exist (a usage error naming the nearest path when it does not);
    with `create` (`--add`), missing objects and lists are made on the way and one past a list's end appends."""
    parts = path.split(".")
    node = document
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not _index_ok(part, len(node), append=create):
                raise _missing(document, path, setting) if not create else _bad_index(path, parts, depth, len(node))
            index = int(part)
            if index == len(node):
                node.append(None)
            if last:
                node[index] = value
                return
            if node[index] is None and create:
                node[index] = [] if parts[depth + 1].isdigit() else {}
            node = node[index]
        elif isinstance(node, dict):
            if not create and part not in node:
                raise _missing(document, path, setting)
            if last:
                node[part] = value
                return
            if part not in node or node[part] is None:
                if not create:
                    raise _missing(document, path, setting)
                node[part] = [] if parts[depth + 1].isdigit() else {}  # a numeric segment next makes a list
            node = node[part]
        else:
            parent = ".".join(parts[:depth]) or "the body"
            raise InvalidSetting(
                setting,
                f" {path}: {parent!r} is a {type(node).__name__}, not an object.",
                "Set the value itself, or pick a path that goes through objects only.",
            )


def unset_path(document: Any, path: str) -> None:
    """Remove the dotted `path` (a key, or a list item); a usage error naming the nearest path when it does not exist."""
    parts = path.split(".")
    node = document
    for part in parts[:-1]:
        node = _step(node, part)
        if node is _GONE:
            raise _missing(document, path, "unset")
    last = parts[-1]
    if isinstance(node, dict) and last in node:
        del node[last]
    elif isinstance(node, list) and _index_ok(last, len(node)):
        del node[int(last)]
    else:
        raise _missing(document, path, "unset")


def apply(document: Any, sets: Sequence[tuple[str, Any]] = (), adds: Sequence[tuple[str, Any]] = (),
          unsets: Sequence[str] = ()) -> None:  # fmt: skip
    """Apply the overrides in ORDER: every --add, then every --set, then every --unset."""
    for path, value in adds:
        set_path(document, path, value, create=True, setting="add")
    for path, value in sets:
        set_path(document, path, value)
    for path in unsets:
        unset_path(document, path)


_GONE = object()


def _step(node: Any, part: str) -> Any:
    if isinstance(node, dict):
        return node.get(part, _GONE)
    if isinstance(node, list) and _index_ok(part, len(node)):
        return node[int(part)]
    return _GONE


def _exists(document: Any, parts: Sequence[str]) -> bool:
    node = document
    for part in parts:
        node = _step(node, part)
        if node is _GONE:
            return False
    return True


def _index_ok(part: str, length: int, append: bool = False) -> bool:
    """Whether `part` is an index of a list of `length` items (negative counts from the end; `append`: one past it too)."""
    if not part.lstrip("-").isdigit():
        return False
    return -length <= int(part) < length + (1 if append else 0)


def _bad_index(path: str, parts: Sequence[str], depth: int, length: int) -> InvalidSetting:
    where = ".".join(parts[: depth + 1])
    return InvalidSetting(
        "add",
        f" {path}: {where!r} is not an index of the list there (it has {length} item(s)).",
        f"Use a 0-based index from 0 to {length} ({length} appends).",
    )


def _missing(document: Any, path: str, setting: str) -> InvalidSetting:
    near = nearest_path(document, path)
    said = f" {path}: no such path in the body" + (f" (the nearest is {near})." if near else ".")
    if setting == "unset":
        hint = f"Did you mean --unset {near}?" if near else "`comethook payloads show TRIGGER` prints the body's paths."
    else:
        hint = (f"Did you mean {near}? " if near else "") + "To create a new path on purpose, use --add PATH=VALUE."
    return InvalidSetting(setting, said, hint)

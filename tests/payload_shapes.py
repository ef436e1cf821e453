"""The payload catalog's key lists as a test holds a built body to them (the `keys` of each template).

Test-only: nothing in comethook reads a body's key paths, so these live beside the tests that use them.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from comethook_cli.cometchat.payloads import Template

#: How deep `paths_of` lists a body's keys: deeper documented paths are named in a template's keys by hand.
KEY_DEPTH = 4
_MAP_KEY = re.compile(r"cometchat-g?uid-\d+|[0-9]+")


def paths_of(document: Any, depth: int = KEY_DEPTH, prefix: str = "", ids: Collection[str] = ()) -> list[str]:
    """Every key path of a document down to `depth`, list items and uid-keyed map entries written `*` (`ids`:
    more uids and guids that key maps, beyond the sample ones)."""
    found: list[str] = []
    if depth == 0 or not isinstance(document, (dict, list)):
        return found
    items = document.items() if isinstance(document, dict) else (("*", item) for item in document)
    for key, value in items:
        part = "*" if isinstance(document, list) or _MAP_KEY.fullmatch(str(key)) or key in ids else str(key)
        path = f"{prefix}{part}"
        if path not in found:
            found.append(path)
        found += [p for p in paths_of(value, depth - 1, path + ".", ids) if p not in found]
    return found


def has_path(document: Any, path: str) -> bool:
    """Whether the dotted path exists (`*`: every item of a non-empty list or map has the rest)."""
    head, _, rest = path.partition(".")
    if head == "*":
        values = list(document.values()) if isinstance(document, dict) else document if isinstance(document, list) else []
        return bool(values) and all(has_path(value, rest) if rest else True for value in values)
    if not isinstance(document, dict) or head not in document:
        return False
    return has_path(document[head], rest) if rest else True


def shape_problems(template: Template, body: Any, ids: Collection[str] = ()) -> list[str]:
    """How a built body strays from its template's key list: documented-or-observed keys missing, unlisted keys sent
    (`ids`: the uids and guids that key maps in this body, beyond the sample ones)."""
    guesses = template.fidelity.guesses if template.fidelity else ()
    problems = [f"{path} missing" for path in (*template.keys, *guesses) if not has_path(body, path)]
    listed = set(template.keys)
    for path in paths_of(body, ids=ids):
        if path not in listed and not any(path == g or path.startswith(g + ".") for g in guesses):
            problems.append(f"{path} is neither documented, observed nor marked a guess")
    return problems

"""The documentation site builds with `mkdocs build --strict` and loads nothing from another host."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: An asset the browser fetches by itself: scripts, styles, fonts, images, icons, frames.
ASSET = re.compile(
    r"""<(?:script|img|iframe|source)\b[^>]*\bsrc\s*=\s*["']?([^"'\s>]+)|<link\b[^>]*\bhref\s*=\s*["']?([^"'\s>]+)""", re.I
)
CSS_URL = re.compile(r"""(?:url\(\s*["']?|@import\s+["'])((?:https?:)?//[^"')\s]+)""", re.I)


def test_the_site_builds_strict_and_works_offline(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, env={"NO_MKDOCS_2_WARNING": "1", "PATH": ""})  # fmt: skip
    assert result.returncode == 0, result.stderr
    pages = list(site.rglob("*.html"))
    assert len(pages) > 25
    remote = []
    for page in pages:
        for match in ASSET.finditer(page.read_text(encoding="utf-8")):
            url = match.group(1) or match.group(2)
            if re.match(r"(?:https?:)?//", url) and 'rel="canonical"' not in match.group(0):
                remote.append(f"{page.relative_to(site)}: {url}")
    for sheet in site.rglob("*.css"):
        remote.extend(f"{sheet.relative_to(site)}: {url}" for url in CSS_URL.findall(sheet.read_text(encoding="utf-8")))
    assert not remote, "assets from another host:\n" + "\n".join(remote[:20])
    # Material's repository widget fetches api.github.com from the page's script: no page may carry it.
    assert not [p for p in pages if 'data-md-component="source"' in p.read_text(encoding="utf-8")]
    assert (site / "reference" / "cli" / "listen" / "index.html").exists()
    assert "comethook listen [OPTIONS]" in (site / "reference" / "cli" / "listen" / "index.html").read_text(encoding="utf-8")

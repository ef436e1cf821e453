"""Whether a `listen` runs on this history home, and where: a small private file it writes while it serves.

Nothing else tells a running listener apart (the history, `public-url` and the inspector's token outlive it), so
`listen` writes $COMETHOOK_HOME/listen.json when it is ready (its pid, its local, public, webhook and inspector URLs,
and its tunnel health, rewritten on each change) and removes it when it stops. A file whose pid is gone (a
`kill -9`), or now belongs to a process that started after the file was written (the pid was reused), is stale:
`running()` says nothing runs. `comethook mcp`'s `listen_status` reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from comethook_cli.engine.session import Session

#: The file, under the history home.
FILE_NAME = "listen.json"
#: Bytes read of that file at most: it holds a few URLs; anything bigger is not ours.
MAX_FILE = 64 * 1024


@dataclass(frozen=True)
class Running:
    """A `listen` serving on this history home."""

    pid: int
    local_url: str
    webhook_url: str
    public_url: str | None = None
    inspector_url: str | None = None
    history: bool = True
    started_at: float = 0.0
    #: By subject ("tunnel", "app"): {"state", "url", "detail"}, as Session.health() says it.
    health: dict[str, dict[str, str]] = field(default_factory=dict)


def path() -> Path:
    """Where the file lives: <home>/listen.json."""
    from comethook_cli.engine.home import home

    return home() / FILE_NAME


def announce(running: Running) -> None:
    """Write (or rewrite) the file: this process serves. A file that cannot be written costs only the discovery."""
    from comethook_cli.engine.home import make_private_directory, write_private

    with contextlib.suppress(OSError):
        make_private_directory(path().parent)
        write_private(path(), json.dumps(asdict(running)))


def withdraw(pid: int | None = None) -> None:
    """Remove the file when it is this process's (another `listen` may have started on the home since)."""
    found = read()
    if found is not None and found.pid != (pid if pid is not None else os.getpid()):
        return
    with contextlib.suppress(OSError):
        path().unlink()


def read() -> Running | None:
    """What the file says, alive or not (None when there is none, or it is not one of ours)."""
    try:
        with path().open("rb") as file:
            document: Any = json.loads(file.read(MAX_FILE))
        return Running(**document) if isinstance(document, dict) else None
    except (OSError, ValueError, TypeError):
        return None


def alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user's counts: it exists)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def started(pid: int) -> float | None:
    """When process `pid` started (epoch seconds, to the second), where the system says: Linux's /proc; else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # the name, in (), may hold spaces
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime, in clock ticks since boot
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def running() -> tuple[Running | None, bool]:
    """(the listener the file names, whether the file is stale: its process is gone, or its pid now names a process
    that started after the listener did, which only a reused pid can)."""
    found = read()
    if found is None:
        return None, False
    if not alive(found.pid):
        return found, True
    since = started(found.pid) if found.started_at > 0 else None  # 0: a file that does not say
    return found, since is not None and since > found.started_at + 1  # btime counts whole seconds


def follow(session: Session, inspector_url: str | None) -> None:
    """Say that `session` serves on this home (at start), again on each change of its health."""
    import time

    from comethook_cli.models import Health

    started = time.time()

    def say(record: object = None) -> None:
        if record is not None and not isinstance(record, Health):
            return
        announce(
            Running(
                os.getpid(), session.local_url, session.webhook_url, session.public_url, inspector_url,
                session.config.history.enabled, started, session.health(),
            )
        )  # fmt: skip

    say()
    session.hub.subscribe(say)

"""Run a command with the process clock at a given time of today in Asia/Tokyo (libfaketime).

    python scripts/at_jst.py 09:15 -- .venv/bin/pytest -x tests/test_healthz.py

The clock starts at HH:MM JST today and runs on from there. It is an offset (libfaketime's
``FAKETIME=+N``), inherited by every child process, so pytest-xdist workers and the
``manage.py`` processes the tests start all see the same time. The monotonic clock stays real
(timeouts and timed waits keep working); scripts/faketime/sitecustomize.py works around
libfaketime 0.9.10's broken ``time.sleep`` in that mode. Needs Debian's libfaketime:
scripts/ensure_faketime.sh.
"""

from __future__ import annotations

import glob
import os
import re
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")
LIBRARY = "/usr/lib/*/faketime/libfaketimeMT.so.1"  # the thread-safe variant: tests use threads
SHIM = Path(__file__).resolve().parent / "faketime"  # its sitecustomize.py


def offset_seconds(hhmm: str, now: float) -> int:
    """Seconds to add to ``now`` (epoch seconds) to be at ``hhmm`` JST of the same JST day."""
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", hhmm)
    if not match:
        raise SystemExit(f"at_jst: the time is HH:MM (JST), not {hhmm!r}")
    today = datetime.fromtimestamp(now, JST)
    target = today.replace(hour=int(match[1]), minute=int(match[2]), second=0, microsecond=0)
    return round(target.timestamp() - now)


def faketime_env(shift: int, env: Mapping[str, str]) -> dict[str, str] | None:
    """The environment of a child whose clock runs ``shift`` seconds ahead of this process's
    (which may itself run under libfaketime: the offsets add up); None without libfaketime."""
    libraries = sorted(glob.glob(LIBRARY))
    if not libraries:
        return None
    current = env.get("FAKETIME", "")
    offset = shift + (int(current) if re.fullmatch(r"[+-]?\d+", current) else 0)
    preload = env.get("LD_PRELOAD", "")
    if libraries[0] not in preload.split():
        preload = " ".join(filter(None, [libraries[0], preload]))
    path = env.get("PYTHONPATH", "")
    if str(SHIM) not in path.split(os.pathsep):
        path = os.pathsep.join(filter(None, [str(SHIM), path]))
    return {
        **env,
        "LD_PRELOAD": preload,
        "FAKETIME": f"{offset:+d}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "PYTHONPATH": path,
    }


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        raise SystemExit("usage: python scripts/at_jst.py HH:MM -- COMMAND [ARGS...]")
    offset = offset_seconds(argv[0], time.time())
    env = faketime_env(offset, {k: v for k, v in os.environ.items() if k != "FAKETIME"})
    if env is None:
        raise SystemExit("at_jst: libfaketime is missing; run scripts/ensure_faketime.sh as root")
    print(f"at_jst: the clock reads {argv[0]} JST (offset {offset:+d} s)", file=sys.stderr)
    os.execvpe(argv[2], argv[2:], env)  # noqa: S606 (the command as given, no shell)


if __name__ == "__main__":
    main(sys.argv[1:])

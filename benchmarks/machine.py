"""A description of the machine and software the figures were taken on."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import psutil


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe(database: str) -> dict[str, str]:
    import django

    memory = psutil.virtual_memory().total
    return {
        "CPU": cpu_model(),
        "cores": f"{os.cpu_count()} logical ({psutil.cpu_count(logical=False) or '?'} physical)",
        "RAM": f"{memory / 2**30:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": sys.version.split()[0],
        "Django": django.get_version(),
        "database": database,
        # Other work on a shared machine slows every figure: say how busy it was.
        "load average (1/5/15 min) at start": "{:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg()),
    }

"""The Procfile at the repository root: read it, and start its processes as a platform would.

The production tests and `manage.py devserver` start processes from these lines as written
(as honcho, foreman and Heroku run them), so the file cannot drift from what is tested.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PROCFILE = BASE_DIR / "Procfile"
_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def read_procfile(path: Path = PROCFILE) -> dict[str, str]:
    """Process type → command line, in file order (comments and blank lines skipped)."""
    processes: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"Procfile line is not 'name: command': {raw!r}")
        processes[match.group(1)] = match.group(2)
    return processes


def procfile_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment plus this interpreter's bin directory first on PATH (`python`,
    `gunicorn` resolve to this virtualenv, as an activated one would on a platform)."""
    env = dict(os.environ if env is None else env)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SHELL = ("&&", "||", ";", "|", "$", "`", ">", "<", "*")


def argv_for(command: str) -> tuple[list[str], dict[str, str]]:
    """How a platform's shell runs a line: (argv, variables assigned in front of the command).

    A simple command (``VAR=value program args``) runs as that program itself, so a signal sent
    to the process reaches it (a qcluster's main process, gunicorn's arbiter) and not a shell in
    between; a line with shell syntax (``migrate && collectstatic``) runs under ``/bin/sh -c``.
    """
    if any(token in command for token in _SHELL):
        return ["/bin/sh", "-c", command], {}
    words = shlex.split(command)
    assigned: dict[str, str] = {}
    while words and _ASSIGNMENT.match(words[0]):
        key, value = words.pop(0).split("=", 1)
        assigned[key] = value
    return words, assigned


def start(
    name: str, *, env: dict[str, str], log: Path | None = None, path: Path = PROCFILE
) -> subprocess.Popen:
    """Start the Procfile's ``name`` line in its own session (output to ``log`` when given)."""
    argv, assigned = argv_for(read_procfile(path)[name])
    environment = procfile_env({**env, **assigned})
    out = log.open("ab") if log else None
    try:
        return subprocess.Popen(
            argv,
            cwd=BASE_DIR,
            env=environment,
            executable=shutil.which(argv[0], path=environment["PATH"]) or argv[0],
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )
    finally:
        if out:
            out.close()

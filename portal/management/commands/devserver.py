"""devserver: the Procfile's process set for development (`make run`).

The `worker` and `dispatcher` lines of the Procfile exactly as written, the web server as
`runserver` (reloads on code changes) instead of gunicorn, and the sandbox. Two clusters on
SQLite are safe here because they never share work: each schedule names its cluster, so only
the dispatcher's scheduler fires the dispatch (SQLite has no row lock to stop two schedulers
firing one schedule), and each cluster reads only its own queue.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

from portal import procfile


class Command(BaseCommand):
    help = "Run the sandbox, runserver and the Procfile's two clusters until Ctrl-C (development)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--no-sandbox", action="store_true")

    def handle(self, *args, addr: str, no_sandbox: bool, **options):
        manage = [sys.executable, "manage.py"]
        commands = {"web": [*manage, "runserver", addr]}
        if not no_sandbox:
            commands["sandbox"] = [
                *manage,
                "sandbox",
                "--kot-port",
                "8701",
                "--senselink-port",
                "8702",
            ]
        processes = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}
        for name in ("worker", "dispatcher"):
            processes[name] = procfile.start(name, env=dict(os.environ))
        self.stdout.write(f"Started {', '.join(processes)}; Ctrl-C stops everything.")
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                ended = [n for n, p in processes.items() if p.poll() is not None]
                if ended:
                    self.stderr.write(f"{', '.join(ended)} stopped; stopping the rest.")
                    break
                time.sleep(0.5)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)  # the cluster's main process only
            deadline = time.monotonic() + 15
            for process in processes.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()

"""devserver: the sandbox, the web server and the django-q2 cluster together (`make run`)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the sandbox, runserver and qcluster until Ctrl-C (development only)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--no-sandbox", action="store_true")

    def handle(self, *args, addr: str, no_sandbox: bool, **options):
        call_command("setup_schedules")
        manage = [sys.executable, "manage.py"]
        commands = {
            "web": [*manage, "runserver", addr],
            "cluster": [*manage, "qcluster"],
        }
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

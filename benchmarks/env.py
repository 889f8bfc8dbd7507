"""The environment every benchmark process runs in (set before Django is imported)."""

from __future__ import annotations

import os
import tempfile
from datetime import date, datetime
from pathlib import Path

from connectors.clock import JST

# The moment every sync benchmark runs at: an ordinary weekday noon, outside KOT's windows.
NOON = datetime(2026, 11, 25, 12, 0, tzinfo=JST)
TODAY = NOON.date()
TARGET_DAY = date(2026, 11, 24)  # the attendance day synced ("前日" of TODAY)
SEED = 1
RECOGNITIONS_PER_EMPLOYEE = 5

DEFAULT_SQLITE = Path(tempfile.gettempdir()) / "portal-bench.sqlite3"


def configure() -> None:
    """Environment defaults for the benchmark (explicit environment values win)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("DEBUG", "true")
    # Never the development database: the benchmark recreates the one it uses.
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{DEFAULT_SQLITE}")
    os.environ["SENSELINK_ALLOW_PRIVATE_HOSTS"] = "true"
    os.environ.setdefault("EMAIL_URL", "dummymail://")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["Q_SYNC"] = "false"  # enqueuing must enqueue, not run the sync inline


def setup_django() -> None:
    configure()
    import django

    django.setup()

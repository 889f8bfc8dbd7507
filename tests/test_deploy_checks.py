"""With production settings, `check --deploy` is clean and the security headers are sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

pytestmark = pytest.mark.slow  # each test starts manage.py as a process

ROOT = Path(__file__).resolve().parent.parent


def bare_environment() -> dict[str, str]:
    """No settings variable of this process (pytest read .env into it): only those given."""
    return {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}


PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "p" * 20 + "Q7#kz!m2" + "r" * 30,
    "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "portal.example.jp",
    "DATABASE_URL": "sqlite:///:memory:",
}


def manage(*args: str) -> subprocess.CompletedProcess:
    env = bare_environment()
    env.update(PRODUCTION)
    # Only the variables above count: the developer's .env is not read.
    code = (
        "import sys, environ; environ.Env.read_env = staticmethod(lambda *a, **k: None);"
        "from django.core.management import execute_from_command_line;"
        "execute_from_command_line(['manage.py', *sys.argv[1:]])"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_prints_no_warning():
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_are_strict():
    code = (
        "import environ; environ.Env.read_env = staticmethod(lambda *a, **k: None);"
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT,"
        " s.SECURE_HSTS_SECONDS, s.X_FRAME_OPTIONS, s.SENSELINK_ALLOW_PRIVATE_HOSTS)"
    )
    env = bare_environment()
    env.update(PRODUCTION, DJANGO_SETTINGS_MODULE="portal.settings")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["False", "True", "True", "True", "31536000", "DENY", "False"]

"""Settings fail loudly on malformed production values and start with good ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

pytestmark = pytest.mark.slow  # each test starts Python as a process

ROOT = Path(__file__).resolve().parent.parent


def bare_environment() -> dict[str, str]:
    """No settings variable of this process (pytest read .env into it): only those given."""
    return {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}


GOOD_KEY = Fernet.generate_key().decode()


def start(*, then: str = "print('started')", **env_vars) -> subprocess.CompletedProcess:
    """Python with the settings module and only ``env_vars``; ``then`` runs after setup."""
    env = bare_environment()
    env.update(env_vars)
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    # cwd elsewhere and .env ignored: only the variables given here count.
    code = (
        "import environ; environ.Env.read_env = staticmethod(lambda *a, **k: None);"
        f"import django; django.setup(); {then}"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "env_vars,expected",
    [
        ({"DEBUG": "false", "SECRET_KEY": "x" * 50}, "FIELD_ENCRYPTION_KEY is not set"),
        (
            {"DEBUG": "false", "SECRET_KEY": "x" * 50, "FIELD_ENCRYPTION_KEY": "not-a-key"},
            "FIELD_ENCRYPTION_KEY entry #1 is malformed",
        ),
        ({"DEBUG": "false", "FIELD_ENCRYPTION_KEY": GOOD_KEY}, "SECRET_KEY is not set"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        # Every boolean is read strictly: a typo never turns a protection off.
        ({"DEBUG": "true", "SECURE_COOKIES": "ture"}, "SECURE_COOKIES must be true or false"),
        ({"DEBUG": "true", "SECURE_SSL_REDIRECT": "yes please"}, "SECURE_SSL_REDIRECT"),
        ({"DEBUG": "true", "BEHIND_TLS_PROXY": "2"}, "BEHIND_TLS_PROXY"),
        ({"DEBUG": "true", "AXES_ENABLED": "nope"}, "AXES_ENABLED"),
        ({"DEBUG": "true", "SENSELINK_ALLOW_PRIVATE_HOSTS": "t"}, "SENSELINK_ALLOW_PRIVATE_HOSTS"),
        ({"DEBUG": "true", "Q_SYNC": "enabled"}, "Q_SYNC"),
    ],
)
def test_production_start_up_refuses_bad_values(env_vars, expected):
    result = start(**env_vars)
    assert result.returncode != 0
    assert expected in result.stderr


def test_production_start_up_accepts_good_values():
    result = start(DEBUG="false", SECRET_KEY="s" * 50, FIELD_ENCRYPTION_KEY=GOOD_KEY)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_a_malformed_key_is_not_echoed_back():
    secretish = "my-not-fernet-secret-value"
    result = start(DEBUG="false", SECRET_KEY="s" * 50, FIELD_ENCRYPTION_KEY=secretish)
    assert result.returncode != 0
    assert secretish not in result.stderr


def test_production_hashes_passwords_with_djangos_pbkdf2_and_only_tests_with_md5():
    from django.contrib.auth.hashers import get_hasher

    assert get_hasher().algorithm == "md5"  # tests/conftest.py: fast hashing in tests only
    result = start(
        DEBUG="false",
        SECRET_KEY="s" * 50,
        FIELD_ENCRYPTION_KEY=GOOD_KEY,
        then="from django.contrib.auth.hashers import get_hasher; print(get_hasher().algorithm)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pbkdf2_sha256"

"""The Procfile names the production processes (SPEC 6) and everything uses its lines as
written: the README shows them, the cluster names agree with the settings, and the `release`
and `web` lines really give a styled admin with DEBUG off."""

from __future__ import annotations

import importlib
import re
import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from django.conf import settings

from integrations import queue
from portal import procfile
from tests.live_world import subprocess_database_url

ROOT = Path(__file__).resolve().parent.parent


def fenced_blocks(path: Path) -> list[list[str]]:
    return [
        block.strip("\n").splitlines()
        for block in re.findall(r"^```[a-z]*\n(.*?)^```", path.read_text(), re.M | re.S)
    ]


def test_the_procfile_names_the_four_production_processes():
    lines = procfile.read_procfile()
    assert list(lines) == ["release", "web", "worker", "dispatcher"]
    assert "manage.py migrate" in lines["release"]
    assert "manage.py collectstatic" in lines["release"]
    assert lines["web"].startswith("gunicorn ") and lines["web"].endswith(" portal.wsgi")
    assert lines["worker"] == "python manage.py qcluster"


def test_the_readme_production_section_and_the_docs_show_the_procfile_as_written():
    procfile_lines = (ROOT / "Procfile").read_text().strip("\n").splitlines()
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Production") :]
    section = section[: section.index("\n## ", 1)]
    assert procfile_lines in [
        b.strip("\n").splitlines()
        for b in re.findall(r"^```[a-z]*\n(.*?)^```", section, re.M | re.S)
    ]
    assert procfile_lines in fenced_blocks(ROOT / "docs" / "PRODUCTION.md")


def test_cluster_names_agree_between_procfile_settings_and_the_queue_module():
    argv, assigned = procfile.argv_for(procfile.read_procfile()["dispatcher"])
    assert argv == ["python", "manage.py", "qcluster"]
    assert assigned == {"Q_CLUSTER_NAME": queue.DISPATCHER}
    assert settings.Q_CLUSTER["name"] == queue.WORKERS
    assert queue.DISPATCHER in settings.Q_CLUSTER["ALT_CLUSTERS"]
    dispatcher = settings.Q_CLUSTER["ALT_CLUSTERS"][queue.DISPATCHER]
    assert dispatcher["workers"] == 1
    assert dispatcher["timeout"] < dispatcher["retry"]


def test_a_line_with_shell_syntax_runs_under_sh_and_a_simple_one_as_itself():
    assert procfile.argv_for("a && b") == (["/bin/sh", "-c", "a && b"], {})
    assert procfile.argv_for("A=1 B='x y' prog --flag") == (
        ["prog", "--flag"],
        {"A": "1", "B": "x y"},
    )


def test_gunicorn_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("PORT", "5123")
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    monkeypatch.setenv("WEB_THREADS", "3")
    conf = importlib.reload(importlib.import_module("portal.gunicorn_conf"))
    assert (conf.bind, conf.workers, conf.threads) == ("0.0.0.0:5123", 5, 3)
    assert conf.worker_class == "gthread"
    assert conf.keepalive > 60  # longer than a load balancer's idle timeout
    assert conf.timeout <= 30
    # The access log shows the path without its query string, and no referrer.
    assert "%(U)s" in conf.access_log_format
    assert "%(r)s" not in conf.access_log_format
    assert "%(q)s" not in conf.access_log_format
    assert "%(f)s" not in conf.access_log_format
    assert conf.control_socket_disable is True


@pytest.mark.slow  # release and gunicorn as processes
@pytest.mark.django_db(transaction=True)
def test_release_then_web_serve_the_styled_admin_with_debug_off(tmp_path):
    port = procfile_free_port()
    env = {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DEBUG": "false",
        "SECRET_KEY": "procfile-test-" + Fernet.generate_key().decode(),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": subprocess_database_url(),
        "STATIC_ROOT": str(tmp_path / "static"),
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "PATH": "/usr/bin:/bin",
    }
    release = procfile.start("release", env=env, log=tmp_path / "release.log")
    assert release.wait(timeout=300) == 0, (tmp_path / "release.log").read_text()
    web = procfile.start("web", env=env, log=tmp_path / "web.log")
    try:
        page = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and web.poll() is None:
            try:
                page = requests.get(f"http://127.0.0.1:{port}/admin/login/", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert page is not None and page.status_code == 200, (tmp_path / "web.log").read_text()
        (css,) = re.findall(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page.text)
        sheet = requests.get(f"http://127.0.0.1:{port}{css}", timeout=5)
        assert sheet.status_code == 200
        assert sheet.headers["Content-Type"].startswith("text/css")
        # The access log, path only. gunicorn writes the line after the answer has gone out.
        line = f'"GET {css} HTTP/1.1" 200'
        deadline = time.monotonic() + 10
        while line not in (log := (tmp_path / "web.log").read_text()):
            assert time.monotonic() < deadline, log
            time.sleep(0.05)
    finally:
        web.terminate()
        web.wait(timeout=30)


def test_gunicorn_logs_in_japan_time_like_everything_else(tmp_path):
    """The master's own lines ("Starting gunicorn") as well as its workers', on a UTC machine."""
    port = procfile_free_port()
    env = {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DEBUG": "true",
        "TZ": "UTC",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "PATH": "/usr/bin:/bin",
    }
    log = tmp_path / "web.log"
    web = procfile.start("web", env=env, log=log)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "Booting worker" not in log.read_text():
            assert web.poll() is None, log.read_text()
            time.sleep(0.1)
    finally:
        web.terminate()
        web.wait(timeout=30)
    stamps = re.findall(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ([+-]\d{4})\]", log.read_text(), re.M)
    assert "Starting gunicorn" in log.read_text()
    assert stamps and set(stamps) == {"+0900"}, log.read_text()


def procfile_free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

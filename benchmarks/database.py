"""A fresh benchmark database: recreated (and migrated) on every full benchmark run."""

from __future__ import annotations

import os
from pathlib import Path

import environ


class UnsafeDatabase(Exception):
    pass


def database_config() -> dict:
    return environ.Env.db_url_config(os.environ["DATABASE_URL"])


def vendor(config: dict | None = None) -> str:
    engine = (config or database_config())["ENGINE"]
    if engine.endswith("sqlite3"):
        return "sqlite"
    if "postgresql" in engine:
        return "postgresql"
    return engine.rsplit(".", 1)[-1]


def recreate() -> str:
    """Drop and create the database DATABASE_URL names; refuses a name without "bench"."""
    config = database_config()
    name = str(config["NAME"])
    kind = vendor(config)
    if "bench" not in name:
        raise UnsafeDatabase(
            f"The benchmark recreates its database; {name!r} does not look like a benchmark "
            "database (its name must contain 'bench', e.g. postgres://postgres@127.0.0.1/portal_bench)."
        )
    if kind == "sqlite":
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)
        return name
    if kind != "postgresql":
        raise UnsafeDatabase(f"Unsupported database for the benchmark: {config['ENGINE']}")
    import psycopg
    from psycopg import sql

    params = {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def server_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            return "PostgreSQL " + cursor.fetchone()[0]
        if connection.vendor == "sqlite":
            cursor.execute("select sqlite_version()")
            return "SQLite " + cursor.fetchone()[0]
    return connection.vendor

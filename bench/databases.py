"""Scratch PostgreSQL databases for the benchmarks (SQLite needs none).

``Databases(store).url()`` creates an empty database on the local server
and returns its URL (None for SQLite); ``drop()`` removes every database
it made. Set FEDSYNC_BENCH_PG_ADMIN to use another server.
"""

from __future__ import annotations

import os
import uuid

import psycopg

PG_ADMIN = os.environ.get("FEDSYNC_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


class Databases:
    def __init__(self, store: str) -> None:
        self.store = store
        self.names: list[str] = []

    def url(self) -> str | None:
        if self.store != "postgres":
            return None
        name = f"fedsync_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return PG_ADMIN.rsplit("/", 1)[0] + "/" + name

    def drop(self) -> None:
        if not self.names:
            return
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            for name in self.names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.names.clear()

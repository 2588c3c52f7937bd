"""Session infrastructure: a real Kafka-protocol broker and a real Postgres.

The embedded ones start unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL point elsewhere.
If either cannot start, the tests that need it fail: they never skip.
"""
from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.common.localstack.embedded import start_broker, start_postgres


@pytest.fixture(scope="session")
def kafka_bootstrap():
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    broker = start_broker()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres_admin_url():
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    server = start_postgres()
    try:
        yield server.url()
    finally:
        server.stop()


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _fresh_database(admin_url: str) -> str:
    name = f"wuguan_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return _with_database(admin_url, name)


@pytest.fixture
async def database_url(postgres_admin_url):
    """A fresh, empty database per test, so tests never see each other's events."""
    yield await _fresh_database(postgres_admin_url)


@pytest.fixture
async def other_database_url(postgres_admin_url):
    """A second fresh database, for a test that runs the same inputs twice and compares."""
    yield await _fresh_database(postgres_admin_url)

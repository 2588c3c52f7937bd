"""Issue 16: a failure an operator can fix is one line on standard error naming what failed and
how to fix it, with exit code 2 and no traceback; `--debug` shows the traceback. Against a real
Postgres (a database without tables, a port nothing listens on) and a broker address that refuses."""
from __future__ import annotations

import os

import pytest

from services.common.localstack.embedded import free_port

from .test_cli import wuguan

pytestmark = pytest.mark.integration


def _one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_database_url_that_is_no_url():
    line = _one_line(wuguan("verify", DATABASE_URL="wuguan-db"))
    assert line.startswith("wuguan verify: DATABASE_URL is not a Postgres URL") and "postgresql://" in line


def test_a_refused_database_connection_names_the_target_but_not_the_password():
    port = free_port()
    line = _one_line(wuguan("projections", "checksum", DATABASE_URL=f"postgresql://ops:s3cret@127.0.0.1:{port}/wuguan"))
    assert f"cannot reach Postgres at ops@127.0.0.1:{port}/wuguan (connection refused)" in line
    assert "s3cret" not in line and "DATABASE_URL" in line


def test_a_refused_broker_connection():
    port = free_port()
    line = _one_line(wuguan("dlq", "inspect", "billing.bill.v1", KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}"))
    assert f"cannot reach the broker at 127.0.0.1:{port}" in line and "KAFKA_BOOTSTRAP_SERVERS" in line


async def test_missing_migrations_say_to_migrate(database_url):
    for command in (("verify",), ("work-queue", "--day", "2026-12-06"), ("cards", "stock")):
        line = _one_line(wuguan(*command, DATABASE_URL=database_url))
        assert "has no Wuguan tables" in line and "run `wuguan migrate` first" in line, command


def test_a_missing_secret():
    for command in (("api-token", "--role", "finance"), ("api",)):
        result = wuguan(*command, WUGUAN_API_SECRET="")
        line = _one_line(result)
        assert "WUGUAN_API_SECRET" in line, command


def test_debug_shows_the_traceback():
    port = free_port()
    result = wuguan("--debug", "verify", DATABASE_URL=f"postgresql://ops@127.0.0.1:{port}/wuguan")
    assert result.returncode != 0 and "Traceback" in result.stderr and "ConnectionRefusedError" in result.stderr
    after = wuguan("verify", "--debug", DATABASE_URL=f"postgresql://ops@127.0.0.1:{port}/wuguan")
    assert "Traceback" in after.stderr


def test_a_worker_with_a_wrong_address_stops_with_one_line(database_url, kafka_bootstrap):
    port = free_port()
    env = {"WUGUAN_DUNNING_PORT": str(free_port())}
    line = _one_line(wuguan("worker", "dunning", DATABASE_URL=f"postgresql://ops@127.0.0.1:{port}/wuguan",
                            KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, **env))
    assert f"cannot reach Postgres at ops@127.0.0.1:{port}/wuguan" in line
    line = _one_line(wuguan("worker", "dunning", DATABASE_URL=database_url,
                            KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}", **env))
    assert f"cannot reach the broker at 127.0.0.1:{port}" in line

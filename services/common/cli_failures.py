"""One line for each failure an operator can fix: what failed and how to fix it (exit 2).

A wrong DATABASE_URL, a refused connection, a database without Wuguan's tables, a missing
secret or a bad setting is not a bug, so it gets no traceback (`wuguan --debug` shows one).
URLs are shown without their password.
"""
from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaError

from .errors import ConfigError

OPERATOR_ERROR = 2
UNEXPECTED = 1


def database_target(url: str | None = None) -> str:
    """DATABASE_URL as user@host:port/database (or its socket directory), never the password."""
    url = url or os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/wuguan"
    try:
        parts = urlsplit(url)
        host = parts.hostname or dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("host", "")
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable DATABASE_URL)"
    user = f"{parts.username}@" if parts.username else ""
    return f"{user}{host}{port}{parts.path}"


def broker_target() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or "127.0.0.1:9092"


def _database(exc: BaseException) -> str | None:
    where = database_target()
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"the database in DATABASE_URL ({where}) does not exist: create it, or fix DATABASE_URL"
    if isinstance(exc, (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
        return f"Postgres refused the login for {where}: fix the user or password in DATABASE_URL"
    if isinstance(exc, asyncpg.UndefinedTableError):
        return f"the database {where} has no Wuguan tables ({exc}): run `wuguan migrate` first"
    if isinstance(exc, asyncpg.ClientConfigurationError) or (isinstance(exc, ValueError) and "dsn" in str(exc).lower()):
        return (f"DATABASE_URL is not a Postgres URL ({exc}): use postgresql://user[:password]@host:port/database")
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host in DATABASE_URL ({where}): fix the host name"
    if isinstance(exc, (ConnectionRefusedError, TimeoutError)) or (isinstance(exc, OSError) and exc.errno is not None):
        reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else (exc.strerror or type(exc).__name__)
        return f"cannot reach Postgres at {where} ({reason}): start it, or set DATABASE_URL"
    if isinstance(exc, asyncpg.PostgresError):
        return f"Postgres at {where} refused: {type(exc).__name__}: {exc}"
    return None


def failure_line(exc: BaseException) -> tuple[str, int]:
    """The message and exit code for `exc`; unexpected errors say so and point at --debug."""
    if isinstance(exc, ConfigError):
        return f"configuration error: {exc}: set it correctly and run again", OPERATOR_ERROR
    if isinstance(exc, KafkaConnectionError) or (isinstance(exc, KafkaError) and "bootstrap" in str(exc).lower()):
        return (f"cannot reach the broker at {broker_target()} ({type(exc).__name__}): start it, or set"
                " KAFKA_BOOTSTRAP_SERVERS"), OPERATOR_ERROR
    line = _database(exc)
    if line is not None:
        return line, OPERATOR_ERROR
    return f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", UNEXPECTED


async def preflight(database_url: str, bootstrap: str) -> None:
    """Reach Postgres and the broker before a long-running process starts, so a wrong address
    is one line (exit 2) rather than a framework's traceback. Raises what connecting raised."""
    import logging

    from aiokafka.admin import AIOKafkaAdminClient

    from .db import connect

    conn = await connect(database_url)
    await conn.close()
    chatty = logging.getLogger("aiokafka")
    level = chatty.level
    chatty.setLevel(logging.CRITICAL)  # it logs the refusal itself; the one line says it with the fix
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
    finally:
        await admin.close()
        chatty.setLevel(level)

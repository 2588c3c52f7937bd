"""Fixtures the integration tests share (the session's broker and Postgres are tests/conftest.py's)."""
from __future__ import annotations

import pytest

from services.common.db import connect
from services.common.eventstore.migrate import migrate


@pytest.fixture
async def conn(database_url):
    """A connection to a database of the test's own with the event store migrated (a module that
    needs more, such as finance's schema, defines its own `conn`)."""
    c = await connect(database_url)
    await migrate(c)
    yield c
    await c.close()

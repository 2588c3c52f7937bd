"""The runtime's split of database errors (issue 19): a refusing database is waited for, an
error one input causes is isolated. Pure: no database is needed to classify an exception."""
import asyncpg

from services.common.runtime.batch_processor import database_refuses_writes


def test_NOTHING_LOST_the_runtime_waits_for_a_refusing_database_and_isolates_what_one_input_breaks():
    """Which database errors stop consumption (wait, offsets unmoved) and which blame the input
    (isolate it, dead-letter it, go on): the split that issue 19's lost batches turned on."""
    def error(cls, sqlstate):
        exc = cls("x")
        exc.sqlstate = sqlstate
        return exc

    waits = [error(asyncpg.InsufficientPrivilegeError, "42501"), error(asyncpg.ReadOnlySQLTransactionError, "25006"),
             error(asyncpg.DiskFullError, "53100"), error(asyncpg.TooManyConnectionsError, "53300"),
             error(asyncpg.SerializationError, "40001"), error(asyncpg.UndefinedTableError, "42P01"),
             ConnectionResetError(), asyncpg.InterfaceError("closed")]
    blames = [error(asyncpg.CharacterNotInRepertoireError, "22021"), error(asyncpg.NotNullViolationError, "23502"),
              error(asyncpg.ProgramLimitExceededError, "54000"), KeyError("x"), ValueError("x"),
              # raised by asyncpg itself, before the query: an argument it cannot encode
              asyncpg.exceptions._base.DataError("invalid input for query argument $1")]
    assert all(database_refuses_writes(e) for e in waits)
    assert not any(database_refuses_writes(e) for e in blames)

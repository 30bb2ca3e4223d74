"""The lock a running refit holds, which dies with the refit's process.

A campaign's refit is queued once (annotation/tasks.py: a cache key with a token, taken when queueing, so that the
drains of many submits queue one refit). That key used to stand for the refit until it ended too; a refit killed
with SIGKILL (the OOM killer, a container stopped hard) could not delete it, and the campaign got no refit until it
expired (REFIT_LOCK_SECONDS, 10 minutes). Now the refit, once it runs, holds a PostgreSQL session-level advisory
lock and gives the queue key back: PostgreSQL ends a killed client's session as its socket closes, lock included, so
the next drain queues a refit at once.

The lock is held on a connection of its own, not the one the refit works on: a session lock outlives transactions,
and one left on a connection that an error had left unusable for the unlock (or on the persistent connection of a
Celery worker) would keep that campaign's refits away for as long as the worker lived. Closing its own connection
always releases it.

On SQLite (the embedded default: Celery runs tasks in-process, the cache is the process's own memory) there is no
such lock, and none is needed: a killed process takes its cache, queue key included, with it. The queue key then
stands for the refit until it ends, as before.
"""

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections

# The advisory lock's first key ("RFT"); the second is the campaign's id (the two-integer form: ids below 2^31).
REFIT_LOCK_CLASS = 0x52465400


def refit_lock_supported() -> bool:
    return connection.vendor == "postgresql"


@contextmanager
def campaign_refit_lock(*, campaign_id: int) -> Iterator[bool]:
    """Hold the campaign's running-refit lock for the block; a refit of the same campaign already running
    elsewhere is waited for. Yields whether the lock dies with this process (PostgreSQL); False on SQLite,
    where nothing is taken."""
    if not refit_lock_supported():
        yield False
        return
    own = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with own.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s::integer, %s::integer)", [REFIT_LOCK_CLASS, campaign_id])
        yield True
    finally:
        with suppress(DatabaseError):  # a connection lost took the lock with it
            own.close()  # ends the session, and with it the lock


def campaign_refit_running(*, campaign_id: int) -> bool:
    """Whether a refit of the campaign runs now, in any process (PostgreSQL; always False on SQLite)."""
    if not refit_lock_supported():
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 2)",
            [REFIT_LOCK_CLASS, campaign_id],
        )
        return cursor.fetchone()[0]

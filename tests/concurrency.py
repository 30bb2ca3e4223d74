"""Two requests at once, in a set order: the interleaving that a race needs, made to happen every time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.db import connection, connections, transaction


def while_held_open(
    hold: Callable[[], object],
    meanwhile: Callable[[], object],
    *,
    pause: float = 0.5,
    until: Callable[[], bool] | None = None,
):
    """Run ``hold`` in a transaction on one thread and keep that transaction open while ``meanwhile`` starts on
    another, ``pause`` seconds more (long enough for ``meanwhile`` to reach its check, or the lock that makes it
    wait), then commit. ``until`` (e.g. ``another_connection_waits``), called on ``hold``'s connection, is waited
    for first (up to 60 s): for a ``meanwhile`` that takes a variable time to reach its check. Each thread has its
    own database connection, closed at its end; a test using this needs ``django_db(transaction=True)`` and
    PostgreSQL (SQLite runs one writer at a time). Returns what ``hold`` and ``meanwhile`` returned, in that order;
    an exception one of them raised (or the commit) in its place."""
    held, started = threading.Event(), threading.Event()
    outcomes: list[object] = [None, None]

    def first() -> None:
        try:
            with transaction.atomic():
                outcomes[0] = hold()
                held.set()
                started.wait(10)
                deadline = time.monotonic() + 60
                while until is not None and not until() and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(pause)
        except BaseException as error:  # returned to the test
            outcomes[0] = error
        finally:
            held.set()
            connections.close_all()

    def second() -> None:
        try:
            held.wait(10)
            started.set()
            outcomes[1] = meanwhile()
        except BaseException as error:
            outcomes[1] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return tuple(outcomes)


def another_connection_waits() -> bool:
    """Whether another connection to this database waits for a lock (a row, a unique key being inserted, an
    advisory lock): the moment a racing statement has reached the point where it must wait. PostgreSQL."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # pg_stat_activity is otherwise read once per transaction
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND a.datname = current_database() AND l.pid <> pg_backend_pid())"
        )
        return cursor.fetchone()[0]

"""Two requests at once, in a set order: the interleaving that a race needs, made to happen every time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.db import connections, transaction


def while_held_open(hold: Callable[[], object], meanwhile: Callable[[], object], *, pause: float = 0.5):
    """Run ``hold`` in a transaction on one thread and keep that transaction open while ``meanwhile`` starts on
    another, ``pause`` seconds more (long enough for ``meanwhile`` to reach its check, or the lock that makes it
    wait), then commit. Each thread has its own database connection, closed at its end; a test using this needs
    ``django_db(transaction=True)`` and PostgreSQL (SQLite runs one writer at a time). Returns what ``hold`` and
    ``meanwhile`` returned, in that order; an exception one of them raised (or the commit) in its place."""
    held, started = threading.Event(), threading.Event()
    outcomes: list[object] = [None, None]

    def first() -> None:
        try:
            with transaction.atomic():
                outcomes[0] = hold()
                held.set()
                started.wait(10)
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

"""A marketplace worker's first arrival can come as two requests at once (a double click, the marketplace's
frame and its retry): both must get the worker's one account, not one account and a 500."""

import threading
import time

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections, transaction

from workers.models import WorkerProfile
from workers.services import external_worker_account


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is proven on PostgreSQL (CI)")
def test_two_first_arrivals_of_one_external_worker_at_once_get_the_same_account() -> None:
    """Both found no profile, then both created the user: the second INSERT waited for the first to commit
    and failed on the unique username (an IntegrityError, a 500 to the marketplace)."""
    first_created, second_started = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def first() -> None:
        try:
            with transaction.atomic():  # the first request, still open when the second one looks
                outcomes["first"] = external_worker_account(external_id="MT-42").id
                first_created.set()
                second_started.wait(10)
                time.sleep(0.5)  # long enough for the second one to reach its INSERT meanwhile
        except BaseException as error:  # reported below
            outcomes["first"] = error
        finally:
            connections.close_all()

    def second() -> None:
        try:
            first_created.wait(10)
            second_started.set()
            outcomes["second"] = external_worker_account(external_id="MT-42").id
        except BaseException as error:
            outcomes["second"] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert isinstance(outcomes["first"], int), outcomes
    assert outcomes["second"] == outcomes["first"], outcomes
    assert list(User.objects.values_list("username", flat=True)) == ["ext-MT-42"]
    assert list(WorkerProfile.objects.values_list("user_id", "external_id")) == [(outcomes["first"], "MT-42")]

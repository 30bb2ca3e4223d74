"""A marketplace worker's first arrival can come as two requests at once (a double click, the marketplace's
frame and its retry): both must get the worker's one account, not one account and a 500."""

import pytest
from django.contrib.auth.models import User
from django.db import connection

from tests.concurrency import while_held_open
from workers.models import WorkerProfile
from workers.services import external_worker_account


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is proven on PostgreSQL (CI)")
def test_two_first_arrivals_of_one_external_worker_at_once_get_the_same_account() -> None:
    """Both found no profile, then both created the user: the second INSERT waited for the first to commit
    and failed on the unique username (an IntegrityError, a 500 to the marketplace)."""
    first, second = while_held_open(  # the first request still open when the second one looks
        lambda: external_worker_account(external_id="MT-42").id,
        lambda: external_worker_account(external_id="MT-42").id,
    )

    assert isinstance(first, int), (first, second)
    assert second == first, (first, second)
    assert list(User.objects.values_list("username", flat=True)) == ["ext-MT-42"]
    assert list(WorkerProfile.objects.values_list("user_id", "external_id")) == [(first, "MT-42")]

"""Marketplace workers' accounts are named ``ext-<their marketplace id>``, and those ids are not secret (a
requester sees them in every HIT's results): an account signed up under such a name made that worker's every
marketplace sign-in fail, for good. The prefix is kept for marketplace accounts."""

import hashlib
import hmac

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from workers.roles import Role
from workers.services import account_create

pytestmark = pytest.mark.django_db
REFUSED = "Usernames starting with “ext-” are kept for workers who arrive from a crowd marketplace."


def test_sign_up_refuses_a_marketplace_name_and_the_marketplace_worker_still_signs_in(client, settings):
    settings.EXTERNAL_WORKER_SECRET = "marketplace-secret"
    form = {"username": "ext-MT-42", "password1": "a-long-pass-9271", "password2": "a-long-pass-9271"}

    squatter = client.post(reverse("signup"), form)
    signature = hmac.new(b"marketplace-secret", b"MT-42", hashlib.sha256).hexdigest()
    arrival = APIClient().post("/api/v1/workers/external/", {"external_id": "MT-42", "signature": signature})

    assert squatter.status_code == 200  # the form again, with the reason
    assert REFUSED in squatter.content.decode()
    assert (arrival.status_code, arrival.json()["username"]) == (200, "ext-MT-42")
    assert list(User.objects.values_list("username", flat=True)) == ["ext-MT-42"]


def test_no_account_of_another_kind_takes_the_prefix():
    with pytest.raises(ValidationError) as refused:
        account_create(username="Ext-A1ZCXRJZ9Z8VJW", password="pw-researcher-1", role=Role.RESEARCHER)
    assert refused.value.messages == [REFUSED]
    assert not User.objects.exists()
    account_create(username="extra", password="pw-worker-12", role=Role.WORKER)  # only the prefix is kept

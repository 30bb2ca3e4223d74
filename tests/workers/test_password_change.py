"""A new password ends the account's API token, however it is set (QA: an admin's reset of a compromised account
left its token working; sessions already ended)."""

import pytest
from django.contrib.auth.forms import AdminPasswordChangeForm
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from workers.roles import Role
from workers.services import account_create

pytestmark = pytest.mark.django_db


def me(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/v1/me/").status_code


def test_the_admins_password_form_ends_the_token_and_a_new_one_works():
    user = account_create(username="wendy", password="first-pass-123", role=Role.WORKER)
    old = Token.objects.create(user=user).key
    assert me(old) == 200

    form = AdminPasswordChangeForm(user, {"password1": "second-pass-456", "password2": "second-pass-456"})
    assert form.is_valid(), form.errors
    form.save()

    assert me(old) == 401
    new = APIClient().post("/api/v1/auth/token/", {"username": "wendy", "password": "second-pass-456"})
    assert new.status_code == 200 and new.json()["token"] != old
    assert me(new.json()["token"]) == 200


def test_set_password_in_a_shell_ends_the_token_and_other_saves_do_not():
    user = account_create(username="walt", password="first-pass-123", role=Role.WORKER)
    key = Token.objects.create(user=user).key
    user.email = "walt@example.org"
    user.save()  # no new password: the token stays
    assert Token.objects.filter(key=key).exists()

    user.set_password("second-pass-456")
    user.save()

    assert not Token.objects.filter(user=user).exists()

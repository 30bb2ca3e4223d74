"""manage.py create_account: the way to make researcher and admin accounts without the Django admin."""

import io
import re

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from workers.roles import Role
from workers.services import user_has_role


def run(*args: str, stdin: str | None = None, monkeypatch=None) -> str:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = io.StringIO()
    call_command("create_account", *args, stdout=out)
    return out.getvalue()


def test_a_researcher_gets_a_random_password_that_signs_in(db) -> None:
    out = run("alice", "--role", "researcher", "--email", "alice@example.org")
    password = re.fullmatch(r"Created researcher alice with the password (\S+)\.\n", out).group(1)
    user = authenticate(username="alice", password=password)
    assert user is not None and user.email == "alice@example.org"
    assert user_has_role(user, Role.RESEARCHER) and not user_has_role(user, Role.ADMIN) and not user.is_staff


def test_an_admin_with_a_password_from_stdin(db, monkeypatch) -> None:
    out = run(
        "root2", "--role", "admin", "--password-stdin", stdin="a long enough passphrase 42\n", monkeypatch=monkeypatch
    )
    assert out == "Created admin root2.\n"
    user = authenticate(username="root2", password="a long enough passphrase 42")
    assert user is not None and user.is_superuser and user_has_role(user, Role.ADMIN)


def test_taken_names_weak_passwords_and_unknown_roles_are_refused_and_create_nothing(db, monkeypatch) -> None:
    run("bob", "--role", "worker")
    with pytest.raises(CommandError, match="already an account named bob"):
        run("bob", "--role", "researcher")
    with pytest.raises(CommandError, match=r"too short|too common"):
        run("carol", "--role", "researcher", "--password-stdin", stdin="abc\n", monkeypatch=monkeypatch)
    with pytest.raises(CommandError, match="Enter a valid username"):
        run("carol smith", "--role", "researcher")
    with pytest.raises(CommandError, match="invalid choice"):
        run("dave", "--role", "boss")
    assert list(User.objects.values_list("username", flat=True)) == ["bob"]

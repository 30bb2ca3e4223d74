"""``manage.py create_account``: a researcher, admin or crowd worker account from the command line.

    manage.py create_account alice --role researcher [--email alice@example.org] [--password-stdin]

Prints the password it made (a random one) unless one comes on standard input, where it is checked
against the site's password validators. Crowd workers can also sign up themselves at /accounts/signup/;
researchers and admins are created here or in the Django admin (a user in the group of that name).
"""

from __future__ import annotations

import secrets
import sys

from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers.roles import Role
from workers.services import account_create


class Command(BaseCommand):
    help = "Create a researcher, admin or crowd worker account; prints its password unless given one on stdin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[role.value for role in Role])
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input (one line)"
        )

    def handle(self, *args: object, **options: object) -> None:
        username = str(options["username"]).strip()
        try:  # the sign-up form's rules: 1-150 letters, digits and @/./+/-/_
            User._meta.get_field("username").run_validators(username)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        if not username:
            raise CommandError("A user name has 1 to 150 characters.")
        if User.objects.filter(username=username).exists():
            raise CommandError(f"There is already an account named {username}.")
        role = Role(str(options["role"]))
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\n")
            try:
                validate_password(password, User(username=username, email=str(options["email"])))
            except ValidationError as error:
                raise CommandError(" ".join(error.messages)) from None
            made = False
        else:
            password, made = secrets.token_urlsafe(12), True
        try:
            account_create(username=username, password=password, role=role, email=str(options["email"]))
        except ValidationError as error:  # a name kept for marketplace workers
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(f"Created {role.value} {username}" + (f" with the password {password}" if made else "") + ".")

from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from workers.roles import Role


def roles_ensure() -> dict[Role, Group]:
    """Create the role groups if missing (idempotent)."""
    return {role: Group.objects.get_or_create(name=role.value)[0] for role in Role}


# Marketplace workers' accounts are ``ext-<marketplace id>`` (external_worker_account). Those ids are not secret (a
# requester sees them in every HIT's results), so an account of another kind under such a name would make that
# worker's every marketplace sign-in fail: no other account may start with the prefix, in any letter case.
EXTERNAL_PREFIX = "ext-"
EXTERNAL_PREFIX_REFUSED = (
    f"Usernames starting with “{EXTERNAL_PREFIX}” are kept for workers who arrive from a crowd marketplace."
)


@transaction.atomic
def account_create(*, username: str, password: str, role: Role, email: str = "") -> User:
    """A new account in one role. Admins are Django superusers too, so the admin site is theirs. Raises
    ValidationError for a name with the marketplace accounts' prefix."""
    if username.lower().startswith(EXTERNAL_PREFIX):
        raise ValidationError(EXTERNAL_PREFIX_REFUSED, code="reserved")
    groups = roles_ensure()
    is_admin = role is Role.ADMIN
    user = User.objects.create_user(
        username=username, password=password, email=email, is_staff=is_admin, is_superuser=is_admin
    )
    user.groups.add(groups[role])
    return user


def user_has_role(user: User, role: Role) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=role.value).exists()


def worker_profile_get(*, user: User):
    from workers.models import WorkerProfile

    return WorkerProfile.objects.get_or_create(user=user)[0]


@transaction.atomic
def external_worker_account(*, external_id: str) -> User:
    """The account of a worker arriving from an external crowd marketplace: one account per external id,
    created on first arrival (no password: they come back through the marketplace)."""
    from workers.models import WorkerProfile

    known = WorkerProfile.objects.select_related("user").filter(external_id=external_id)
    if (profile := known.first()) is not None:
        return profile.user
    groups = roles_ensure()
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=f"{EXTERNAL_PREFIX}{external_id}"[:150])
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.add(groups[Role.WORKER])
            WorkerProfile.objects.create(user=user, external_id=external_id)
    except IntegrityError:
        # A concurrent first arrival of the same worker created the account: its INSERT made this one wait for
        # its commit, so the account is visible now (read committed). Two requests at once both found no
        # profile above, and the second failed on the unique username (a 500 to the marketplace).
        if (profile := known.first()) is not None:
            return profile.user
        raise
    return user

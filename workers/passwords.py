"""What a new password does besides the password: it ends the account's API token."""

from rest_framework.authtoken.models import Token


class TokenRevokedOnPasswordChange:
    """Listed in AUTH_PASSWORD_VALIDATORS, not to judge passwords (``validate`` accepts every one) but because Django
    calls each configured validator's ``password_changed`` when a user's new password is saved — by the admin's
    password form, ``manage.py changepassword`` or ``set_password`` + ``save`` alike. Sessions end with the old
    password (their hash is derived from it); the API token did not, so an admin resetting a compromised account
    left its token working (QA). Cached tokens (annotation.api.hits.CachedTokenAuthentication) are refused at most
    TOKEN_CACHE_SECONDS later."""

    def validate(self, password, user=None) -> None:
        return None

    def password_changed(self, password, user=None) -> None:
        if user is not None and user.pk is not None:
            Token.objects.filter(user=user).delete()

    def get_help_text(self) -> str:
        return "A new password ends the account's API token: scripts using it must get a new one."

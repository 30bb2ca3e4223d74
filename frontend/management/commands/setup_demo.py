import json
import secrets

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand

from taxonomy.models import Synset
from workers.roles import Role
from workers.services import account_create, roles_ensure

DEMO_ACCOUNTS = (("admin", Role.ADMIN), ("researcher", Role.RESEARCHER))


class Command(BaseCommand):
    help = "Seed the embedded demo: the WordNet taxonomy and the demo accounts. Idempotent."

    def handle(self, *args, **options):
        if not Synset.objects.exists():
            call_command("import_wordnet", "--all", stdout=self.stdout, stderr=self.stderr)
        else:
            self.stdout.write(f"Taxonomy present: {Synset.objects.count()} synsets.")
        roles_ensure()
        credentials = self._accounts()
        self.stdout.write(self.style.SUCCESS("\nSynsight demo accounts (sign in at http://127.0.0.1:8000/):"))
        for username, role in DEMO_ACCOUNTS:
            self.stdout.write(f"  {role.value:<11} user: {username:<11} password: {credentials[username]}")

    def _accounts(self) -> dict[str, str]:
        """Random passwords, made once and kept in the data folder so every run can print them."""
        path = settings.DATA_DIR / "demo_credentials.json"
        credentials = json.loads(path.read_text()) if path.exists() else {}
        for username, role in DEMO_ACCOUNTS:
            if User.objects.filter(username=username).exists() and username in credentials:
                continue
            password = credentials.get(username) or secrets.token_urlsafe(9)
            user = User.objects.filter(username=username).first()
            if user is None:
                account_create(username=username, password=password, role=role)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            credentials[username] = password
        path.write_text(json.dumps(credentials, indent=2))
        path.chmod(0o600)
        return credentials

import json
import secrets

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand

from annotation.services import demo
from taxonomy.models import Synset
from workers.roles import Role
from workers.services import account_create, roles_ensure

DEMO_ACCOUNTS = (("admin", Role.ADMIN), ("researcher", Role.RESEARCHER), ("worker", Role.WORKER))
DEMO_PER_SYNSET = 60


class Command(BaseCommand):
    help = (
        "Seed the embedded demo: the WordNet taxonomy, the synthetic shapes images with their ground truth, a "
        "running campaign over the shapes with gold items, and the admin, researcher and worker accounts. "
        "Idempotent: a second run only prints the credentials."
    )

    def add_arguments(self, parser):
        parser.add_argument("--per-synset", type=int, default=DEMO_PER_SYNSET, help="demo images per shape")
        parser.add_argument("--no-images", action="store_true", help="only the taxonomy and the accounts")
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="where the demo is served (printed)")

    def handle(self, *args, per_synset: int, no_images: bool, url: str, **options):
        if not Synset.objects.exists():
            call_command("import_wordnet", "--all", stdout=self.stdout, stderr=self.stderr)
        else:
            self.stdout.write(f"Taxonomy present: {Synset.objects.count()} synsets.")
        roles_ensure()
        credentials = self._accounts()
        campaign = None
        if not no_images:
            call_command("make_demo_images", "--per-synset", str(per_synset), "--no-progress", stdout=self.stdout,
                         stderr=self.stderr)  # fmt: skip
            researcher = User.objects.get(username="researcher")
            # A target the demo can reach: about 70% of each shape's candidates show it.
            campaign, created = demo.demo_campaign_ensure(
                owner=researcher,
                name=demo.DEMO_CAMPAIGN,
                wnids=demo.DEMO_WNIDS,
                target_per_synset=max(1, per_synset // 2),
                boxes_enabled=True,  # accepted images go on to the box pages, so the demo shows the whole pipeline
            )
            shapes = campaign.campaign_synsets.count()
            self.stdout.write(
                f"Campaign {campaign.id} “{campaign.name}” ({'created' if created else 'present'}, {campaign.state}) "
                f"over {shapes} shapes."
            )
            (settings.DATA_DIR / "demo_campaign").write_text(f"{campaign.id}\n")
        self.stdout.write(self.style.SUCCESS(f"\nSynsight demo accounts (sign in at {url}):"))
        for username, role in DEMO_ACCOUNTS:
            self.stdout.write(f"  {role.value:<11} user: {username:<11} password: {credentials[username]}")
        if campaign is not None:
            self.stdout.write(
                f"  The worker labels campaign {campaign.id} after its qualification quiz; a simulated crowd "
                "labels it too unless SYNSIGHT_DEMO_CROWD=0."
            )

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

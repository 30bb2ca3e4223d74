import json

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from annotation.errors import disk_full
from export import services
from export.errors import ExportError
from export.models import DatasetVersion

EXIT_DAMAGED = 2  # --verify: the published files are not the ones the version recorded
EXIT_REBUILT_DIFFERENTLY = 3  # --verify: intact, but this code writes other bytes from the snapshot


class Command(BaseCommand):
    help = (
        "Create and build a dataset version of one or more campaigns (in this process, with progress), or "
        "--verify a done version: check its published files against its manifest, then rebuild it from its "
        "snapshot and compare the manifests file by file. Exit status of --verify: 0 intact (and rebuilt byte for "
        f"byte), {EXIT_DAMAGED} published files damaged (missing, changed or extra), {EXIT_REBUILT_DIFFERENTLY} "
        "intact but rebuilt with other bytes (the output says by which exporter format each was written), 1 "
        "another error."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", type=int, action="append", dest="campaigns", help="repeatable")
        parser.add_argument("--name")
        parser.add_argument("--dataset-version", type=int, help="default: one more than the name's latest")
        parser.add_argument("--notes", default="")
        parser.add_argument("--user", default="admin", help="the admin or researcher creating it")
        parser.add_argument("--options", default="{}", help='JSON, e.g. \'{"formats": ["imagenet"]}\'')
        parser.add_argument("--verify", type=int, metavar="VERSION_ID")
        parser.add_argument(
            "--no-rebuild", action="store_true", help="with --verify: check the published files only (a read)"
        )

    def handle(self, *args, **opts):
        if opts["verify"]:
            return self._verify(opts["verify"], rebuild=not opts["no_rebuild"])
        if not opts["name"] or not opts["campaigns"]:
            raise CommandError("Give --name and at least one --campaign (or --verify VERSION_ID).")
        try:
            options = json.loads(opts["options"])
        except json.JSONDecodeError as error:
            raise CommandError(f"--options is not JSON: {error}.") from None
        user = User.objects.filter(username=opts["user"]).first()
        if user is None:
            raise CommandError(f"No user {opts['user']!r}.")
        try:
            version = services.dataset_version_create(
                user=user, name=opts["name"], campaign_ids=opts["campaigns"], options=options, notes=opts["notes"],
                version=opts["dataset_version"],
            )  # fmt: skip
        except ExportError as error:
            raise CommandError(error.message) from None
        # The build was enqueued on commit: with eager Celery it has run already; otherwise run it here.
        version = services.dataset_version_build(version_id=version.id)
        if version.status != DatasetVersion.Status.DONE:
            version.refresh_from_db()
        if version.status == DatasetVersion.Status.FAILED:
            raise CommandError(f"Version {version.id} failed: {version.error}")
        self.stdout.write(
            f"{version} (id {version.id}): {version.status}, {version.images} images, {version.labels} labels, "
            f"{version.boxes} boxes, "
            f"{version.file_count} files, {version.total_bytes:,} bytes in {services.version_folder(version)}; "
            f"manifest sha256 {version.manifest_sha256}"
        )

    def _verify(self, version_id: int, rebuild: bool):
        version = DatasetVersion.objects.filter(id=version_id).first()
        if version is None:
            raise CommandError(f"No dataset version {version_id}.")
        try:
            result = services.dataset_version_verify(version=version, rebuild=rebuild)
        except ExportError as error:
            raise CommandError(error.message) from None
        except OSError as error:
            if not disk_full(error):
                raise
            raise CommandError(
                "The rebuild ran out of disk space in the export folder (EXPORT_ROOT); its scratch copy was removed. "
                "Free space and verify again, or check the published files alone with --no-rebuild."
            ) from None
        self.stdout.write(f"{version} (id {version.id}):")
        for sentence in result.sentences():
            self.stdout.write(f"  {sentence}")
        if result.verdict == result.DAMAGED:
            raise CommandError(f"{version}: published files damaged.", returncode=EXIT_DAMAGED)
        if result.verdict == result.REBUILT_DIFFERENTLY:
            raise CommandError(
                f"{version}: published files intact; this code rebuilds them differently.",
                returncode=EXIT_REBUILT_DIFFERENTLY,
            )

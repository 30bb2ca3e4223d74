from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation import sources
from annotation.errors import disk_full
from annotation.models import ImportBatch
from annotation.services import images
from taxonomy import selectors as taxonomy
from taxonomy.models import Synset

SOURCE = {"folder": ImportBatch.Source.FOLDER, "zip": ImportBatch.Source.ARCHIVE,
          "tar": ImportBatch.Source.ARCHIVE, "urls": ImportBatch.Source.URL}  # fmt: skip
REPORT_LINES = 100


class Command(BaseCommand):
    help = (
        "Import candidate images for a synset from a folder (recursive), a .zip or .tar(.gz) archive, or a "
        ".txt file of image URLs. Duplicates and near-duplicates are reported, not stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--synset", required=True, metavar="WNID", help="e.g. n02084071 (dog.n.01)")
        parser.add_argument("--query-term", default="", help="the search term the images were found with")
        parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, path: Path, synset: str, query_term: str, workers: int | None, **options):
        try:
            target = taxonomy.synset_get(wnid=synset)
        except taxonomy.InvalidWnid as error:
            raise CommandError(str(error)) from None
        except Synset.DoesNotExist:
            raise CommandError(f"No synset {synset} in this database; import it with import_wordnet.") from None
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        try:
            kind = sources.kind_of(path)
        except ValueError as error:
            raise CommandError(str(error)) from None
        batch = images.import_batch_create(
            synset=target, source=SOURCE[kind], query_term=query_term, origin=str(path.resolve())
        )
        incoming, total = self._incoming(path, kind)
        with tqdm(total=total, unit="image", disable=options["no_progress"], file=self.stderr) as bar:
            try:
                batch = images.import_foreground(
                    batch=batch, incoming=incoming, workers=workers or settings.IMAGE_IMPORT_WORKERS,
                    progress=bar.update,
                )  # fmt: skip
            except OSError as error:
                if not disk_full(error):
                    raise
                raise CommandError(ImportBatch.objects.get(id=batch.id).error) from None  # what to do, not a traceback
        self._report(batch)

    @staticmethod
    def _incoming(path: Path, kind: str):
        limit = settings.IMAGE_MAX_BYTES
        if kind == "folder":
            return sources.folder_files(path, limit), None
        if kind == "urls":
            urls = sources.url_list(path)
            return images.fetch_all(((url, None) for url in urls), images.fetch_policy()), len(urls)
        return sources.archive_files(path, images.archive_limits()), None

    def _report(self, batch: ImportBatch) -> None:
        replaced = batch.items.filter(outcome="accepted", code="replaced").count()
        self.stdout.write(
            f"Import {batch.id} into {batch.synset.wnid}: {batch.accepted} accepted"
            + (f" ({replaced} replacing a smaller copy)" if replaced else "")
            + f", {batch.duplicate} duplicate, {batch.near_duplicate} near-duplicate, {batch.rejected} rejected."
        )
        reported = batch.items.exclude(outcome="accepted", code="").order_by("id")  # and replacements
        for item in reported[:REPORT_LINES]:
            self.stdout.write(f"  {item.outcome:<14} {item.name}: {item.reason}")
        if (more := reported.count() - REPORT_LINES) > 0:
            self.stdout.write(f"  … and {more} more (GET /api/v1/image-imports/{batch.id}/items/).")

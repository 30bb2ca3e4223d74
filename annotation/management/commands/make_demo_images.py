import json
import shutil

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from tqdm import tqdm

from annotation import demo_images, sources
from annotation.models import ImportBatch
from annotation.services import images
from taxonomy.models import Synset


class Command(BaseCommand):
    help = (
        "Draw the synthetic shapes images (annotation/demo_images.py) into DATA_DIR/demo with their ground "
        "truth (truth.jsonl, truth.csv) and import each synset's images as candidates. Deterministic under "
        "--seed; idempotent: a re-run with the same options creates nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--per-synset", type=int, default=40)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, seed: int, per_synset: int, **options):
        wnids = [shape.wnid for shape in demo_images.SHAPES]
        if Synset.objects.filter(id__in=[int(w[1:]) for w in wnids]).count() < len(wnids):
            call_command("import_wordnet", "--root", "plane_figure.n.01", "--no-progress", stdout=self.stdout)
        folder = self._draw(seed, per_synset)
        for shape in tqdm(demo_images.SHAPES, unit="synset", disable=options["no_progress"], file=self.stderr):
            origin = f"demo seed={seed} per-synset={per_synset} {shape.wnid}"
            if ImportBatch.objects.filter(source=ImportBatch.Source.DEMO, origin=origin, status="done").exists():
                continue
            batch = images.import_batch_create(
                synset=Synset.objects.get(id=int(shape.wnid[1:])), source=ImportBatch.Source.DEMO,
                query_term=shape.label, origin=origin,
            )  # fmt: skip
            incoming = sources.folder_files(folder / shape.wnid, settings.IMAGE_MAX_BYTES)
            batch = images.import_foreground(batch=batch, incoming=incoming, workers=settings.IMAGE_IMPORT_WORKERS)
            self.stdout.write(
                f"{shape.wnid} {shape.label}: {batch.accepted} accepted, {batch.duplicate} duplicate, "
                f"{batch.near_duplicate} near-duplicate, {batch.rejected} rejected."
            )
        self.stdout.write(f"Demo images and ground truth in {folder} (truth.jsonl).")

    def _draw(self, seed: int, per_synset: int):
        """Write the images once per (seed, per-synset); the same options find them on disk."""
        folder = settings.DATA_DIR / "demo"
        params = {"seed": seed, "per_synset": per_synset, "generator": "annotation.demo_images"}
        marker = folder / "params.json"
        if marker.exists() and json.loads(marker.read_text()) == params and (folder / "truth.jsonl").exists():
            return folder
        if folder.exists():
            shutil.rmtree(folder)
        self.stderr.write(f"Drawing {per_synset * len(demo_images.SHAPES)} demo images into {folder}…")
        demo_images.write_dataset(folder, seed=seed, per_synset=per_synset)
        marker.write_text(json.dumps(params))
        return folder

"""Benchmark: ingest 2,000 1024-px JPEGs from a folder (SHA-256, perceptual hash, thumbnail, rows).

Target (issue 3): at least 100 images/s on 2 cores with PostgreSQL, using both cores. The images (photo-
like: smooth colour fields, shapes and grain, ~1024x768, distinct) are written first and not timed; then
``images_ingest`` runs in a fresh process against SQLite and, with --postgres, a scratch PostgreSQL
database (created and dropped). Prints one JSON object.
    .venv/bin/python benchmarks/image_ingest.py [--postgres postgres://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
COUNT = 2000
DOG = "dog.n.01"

PROBE = """
import json, time, django
django.setup()
from pathlib import Path
from django.core.management import call_command
from annotation import sources
from annotation.services import images
from taxonomy.selectors import synset_get
call_command("import_wordnet", "--root", "dog.n.01", "--no-progress")
batch = images.import_batch_create(synset=synset_get(wnid="n02084071"), source="folder")
started = time.perf_counter()
files = sources.folder_files(Path({folder!r}), 25 * 2**20)
batch = images.images_ingest(batch=batch, incoming=files, workers={workers})
seconds = time.perf_counter() - started
print(json.dumps({{"seconds": round(seconds, 2), "images_per_second": round({count} / seconds, 1),
    "accepted": batch.accepted, "near_duplicate": batch.near_duplicate, "rejected": batch.rejected}}))
"""


def draw(index: int, folder: str) -> int:
    rng = np.random.default_rng(index)
    field = Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)).resize((1024, 768), Image.BICUBIC)
    canvas = ImageDraw.Draw(field)
    for _ in range(int(rng.integers(3, 12))):
        x, y, r = (int(v) for v in rng.integers(0, 1024, 3))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        (canvas.ellipse if rng.random() < 0.5 else canvas.rectangle)((x, y % 768, x + r // 4, y % 768 + r // 5), colour)
    grain = rng.normal(0, 6, (768, 1024, 1))
    pixels = np.clip(np.asarray(field, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    path = Path(folder) / f"{index:05d}.jpg"
    Image.fromarray(pixels).save(path, quality=90)
    return path.stat().st_size


def measure(database_url: str | None, data_dir: str, folder: str, workers: int) -> dict:
    env = {**os.environ, "SYNSIGHT_DATA_DIR": data_dir, "NLTK_DATA_DIR": str(ROOT / "data" / "nltk_data"),
           "DJANGO_SETTINGS_MODULE": "config.settings"}  # fmt: skip
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    probe = subprocess.run(
        [sys.executable, "-c", PROBE.format(folder=folder, workers=workers, count=COUNT)],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(probe.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="server URL, e.g. postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    figures = {"cpu_count": os.cpu_count(), "workers": args.workers, "images": COUNT}
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        with ProcessPoolExecutor() as pool:
            sizes = list(pool.map(draw, range(COUNT), [folder] * COUNT, chunksize=50))
        figures["generate_seconds"] = round(time.perf_counter() - started, 1)
        figures["median_file_bytes"] = int(np.median(sizes))
        with tempfile.TemporaryDirectory() as data_dir:
            figures["sqlite"] = measure(None, data_dir, folder, args.workers)
        if args.postgres:
            import psycopg

            scratch = f"synsight_bench_{os.getpid()}"
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {scratch}")
            try:
                with tempfile.TemporaryDirectory() as data_dir:
                    url = args.postgres.rsplit("/", 1)[0] + f"/{scratch}"
                    figures["postgresql"] = measure(url, data_dir, folder, args.workers)
            finally:
                with psycopg.connect(args.postgres, autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")
    figures["targets"] = {"images_per_second_min": 100}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

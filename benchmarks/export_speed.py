"""Benchmark: export N images (default 100,000) to the ImageNet layout and to WebDataset shards, against a
plain `tar` of the same image files on the same disk.

Target (issue 7): each export at least 80% of tar's speed (tar seconds / export seconds >= 0.8), with peak
memory (RSS) under 300 MB. Not timed: writing N small distinct JPEGs into MEDIA_ROOT and bulk-creating the
Image / Candidate / Campaign rows, then the snapshot (reported on its own). Each timed step runs in its own
fresh process, so its peak RSS (getrusage ru_maxrss) is its own; tar runs once to warm the page cache and
is then timed like the exports (all read from the cache: the comparison is of the writing side).

    .venv/bin/python benchmarks/export_speed.py [--images 100000] [--database-url postgres://…/postgres]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETUP = """
import hashlib, io, json, os, random, resource, time, django
django.setup()
import numpy as np
from PIL import Image as PILImage
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from annotation.models import Campaign, CampaignSynset, Candidate, Image
from annotation.services.images import storage_names
from export import services
from export.models import DatasetVersion
from taxonomy.selectors import synset_descendant_ids

N = {images}
call_command("import_wordnet", "--root", "dog.n.01", "--no-progress")
synsets = sorted(synset_descendant_ids(synset_id=2084071))[:100]
rng = np.random.default_rng(1)
bases = []
for k in range(8):  # small photo-like JPEGs, 160x120 with grain, ~8-12 KB
    pixels = (rng.normal(128, 40, (120, 160, 3)) + np.linspace(0, 80, 160)[None, :, None]).clip(0, 255)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels.astype(np.uint8)).save(buffer, "JPEG", quality=85)
    bases.append(buffer.getvalue())
media = settings.MEDIA_ROOT
rows = []
for i in range(N):
    base = bases[i % len(bases)]
    comment = f"synsight-bench-{{i}}".encode()
    data = base[:2] + b"\\xff\\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + base[2:]  # distinct bytes
    sha = hashlib.sha256(data).hexdigest()
    name, thumb, medium = storage_names(sha, "jpg")
    path = media / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    rows.append(Image(sha256=sha, file=name, thumbnail=thumb, medium=medium, format="JPEG", width=160, height=120,
                      byte_size=len(data), phash=i))
Image.objects.bulk_create(rows, batch_size=5000)
ids = list(Image.objects.order_by("id").values_list("id", flat=True))
del rows
admin = User.objects.create_superuser("bench-admin", password="x")
campaign = Campaign.objects.create(name="bench", owner=admin)
CampaignSynset.objects.bulk_create(CampaignSynset(campaign=campaign, synset_id=s) for s in synsets)
Candidate.objects.bulk_create(
    (Candidate(image_id=image_id, synset_id=synsets[n % len(synsets)], state="accepted",
               posterior=0.95 + (n % 50) / 1000, model_version="ds-1/bench") for n, image_id in enumerate(ids)),
    batch_size=5000,
)
versions = {{}}
for fmt in ("imagenet", "webdataset"):
    v = DatasetVersion.objects.create(name=f"bench-{{fmt}}", version=1, options=services.options_normalise(
        {{"formats": [fmt]}}), created_by=admin, output_dir=f"bench-{{fmt}}")
    v.campaigns.set([campaign])
    started = time.perf_counter()
    services.dataset_snapshot_take(version=v)
    versions[fmt] = {{"id": v.id, "snapshot_seconds": round(time.perf_counter() - started, 2)}}
total = sum(p.stat().st_size for p in (media / "images").rglob("*.jpg"))
print(json.dumps({{"versions": versions, "image_bytes": total,
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}}))
"""

EXPORT = """
import json, resource, time, django
django.setup()
from export import services
from export.files import VersionFolder
from export.models import DatasetVersion
version = DatasetVersion.objects.get(id={version_id})
started = time.perf_counter()
manifest = services.dataset_files_write(version=version, folder=VersionFolder(__import__("pathlib").Path({out!r})))
seconds = time.perf_counter() - started
print(json.dumps({{"seconds": round(seconds, 2), "files": manifest["file_count"], "bytes": manifest["total_bytes"],
                  "images_per_second": round(version.images / seconds, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}}))
"""

TAR = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
subprocess.run(["tar", "-cf", {out!r}, "-C", {media!r}, "images"], check=True)
seconds = time.perf_counter() - started
print(json.dumps({{"seconds": round(seconds, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}}))
"""


def run(code: str, env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def sync() -> None:
    os.sync()  # flush the previous step's dirty pages so that no step pays for another's writes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--database-url", help="a PostgreSQL server URL; a scratch database is created and dropped")
    parser.add_argument("--dir", help="work folder (default: a temporary folder under /tmp, removed after)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="synsight-export-bench-", dir=args.dir))
    env = {**os.environ, "SYNSIGHT_DATA_DIR": str(work), "MEDIA_ROOT": str(work / "media"),
           "NLTK_DATA_DIR": str(ROOT / "data" / "nltk_data"), "DJANGO_SETTINGS_MODULE": "config.settings",
           "EXPORT_ROOT": str(work / "exports"), "LOG_LEVEL": "WARNING"}  # fmt: skip
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    scratch = None
    try:
        if args.database_url:
            import psycopg

            scratch = f"synsight_export_bench_{os.getpid()}"
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {scratch}")
            env["DATABASE_URL"] = args.database_url.rsplit("/", 1)[0] + f"/{scratch}"
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        started = time.perf_counter()
        setup = run(SETUP.format(images=args.images), env)
        figures = {
            "images": args.images,
            "database": "postgresql" if scratch else "sqlite",
            "image_bytes": setup["image_bytes"],
            "setup_seconds": round(time.perf_counter() - started, 1),
            "snapshot_seconds": {k: v["snapshot_seconds"] for k, v in setup["versions"].items()},
        }
        media = str(work / "media")
        sync()
        run(TAR.format(out=str(work / "warm.tar"), media=media), env)  # warm the page cache
        (work / "warm.tar").unlink()
        sync()
        tar = run(TAR.format(out=str(work / "plain.tar"), media=media), env)
        sync()
        figures["tar"] = tar
        for fmt in ("imagenet", "webdataset"):
            out = work / "exports" / fmt
            result = run(EXPORT.format(version_id=setup["versions"][fmt]["id"], out=str(out)), env)
            sync()
            result["tar_speed_ratio"] = round(tar["seconds"] / result["seconds"], 3)
            figures[fmt] = result
            shutil.rmtree(out)
        figures["targets"] = {"tar_speed_ratio_min": 0.8, "peak_rss_mb_max": 300}
        figures["met"] = all(
            figures[f]["tar_speed_ratio"] >= 0.8 and figures[f]["peak_rss_mb"] < 300 for f in ("imagenet", "webdataset")
        )
        print(json.dumps(figures, indent=2))
    finally:
        if not os.environ.get("KEEP_BENCH"):
            shutil.rmtree(work, ignore_errors=True)
        if scratch:
            import psycopg

            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")


if __name__ == "__main__":
    main()

"""Benchmark: export N images (default 100,000) to the ImageNet layout and to WebDataset shards, against a
plain `tar -cf` of the same image files on the same disk.

Target (issue 7): each export at least 80% of tar's speed (tar seconds / export seconds >= 0.8), with peak
memory (RSS) under 300 MB. Not timed: writing N small distinct JPEGs into MEDIA_ROOT and bulk-creating the
Image / Candidate / Campaign rows, then the snapshot (reported on its own). Each timed step runs in its own
fresh process, so its peak RSS (getrusage ru_maxrss) and CPU time (user + system) are its own. tar runs once
to warm the page cache; then each round times tar, the ImageNet export and the WebDataset export one after
the other (all read from the cache, all write to the same folder on the same disk), so that the three share
the machine's load. Reported per step: the median over the rounds of wall seconds and CPU seconds, and the
ratios tar / export of both (the CPU ratio is the fairer one when other processes load the machine), with
the load average before and after.

    .venv/bin/python benchmarks/export_speed.py [--images 100000] [--rounds 3] [--database-url postgres://…/db]
        [--dir /tmp] [--keep] [--reuse WORK_DIR]

``--keep`` leaves the work folder (and the scratch database) for ``--reuse``, which skips the setup.
``EXPORT_LINK_ORIGINALS=0`` in the environment makes the ImageNet layout copy originals instead of
hard-linking them, ``EXPORT_PROCESSES=N`` sets the WebDataset shard writers (export/README.md);
``--formats imagenet`` times only that export.
"""

import argparse
import json
import os
import shutil
import statistics
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
    name, thumb, _ = storage_names(sha, "jpg")
    path = media / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    # medium = the original, as the import stores an upright 160x120 JPEG (no display copy): the export then
    # knows it needs no EXIF rotation without reading its header.
    rows.append(Image(sha256=sha, file=name, thumbnail=thumb, medium=name, format="JPEG", width=160, height=120,
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
# A fraction of the images get one final box (ImageNet: 544,546 of 1,281,167 train images have boxes, 42%):
# their VOC files and solution lines are written too.
from annotation.models import Box, BoxJob
campaign.boxes_enabled = True
campaign.save(update_fields=["boxes_enabled"])
boxed = [row for n, row in enumerate(Candidate.objects.order_by("id").values_list("id", "synset_id"))
         if n % 100 < round({boxed} * 100)]
for start in range(0, len(boxed), 5000):
    jobs = BoxJob.objects.bulk_create(BoxJob(candidate_id=c, campaign=campaign, synset_id=s, state="done")
                                      for c, s in boxed[start:start + 5000])
    Box.objects.bulk_create(Box(job=j, candidate_id=j.candidate_id, x1=10 + n % 20, y1=12, x2=150, y2=100 + n % 20,
                                state="accepted", posterior=0.97) for n, j in enumerate(jobs))
versions = {{}}
for fmt in ("imagenet", "webdataset"):
    v = DatasetVersion.objects.create(name=f"bench-{{fmt}}", version=1, options=services.options_normalise(
        {{"formats": [fmt]}}), created_by=admin, output_dir=f"bench-{{fmt}}")
    v.campaigns.set([campaign])
    started = time.perf_counter()
    services.dataset_snapshot_take(version=v)
    versions[fmt] = {{"id": v.id, "snapshot_seconds": round(time.perf_counter() - started, 2)}}
total = sum(p.stat().st_size for p in (media / "images").rglob("*.jpg"))
print(json.dumps({{"versions": versions, "image_bytes": total, "images": N, "boxed_images": len(boxed),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}}))
"""

EXPORT = """
import json, resource, time, django
django.setup()
from export import services
from export.files import VersionFolder
from export.models import DatasetVersion
version = DatasetVersion.objects.get(id={version_id})
before = resource.getrusage(resource.RUSAGE_SELF)
started = time.perf_counter()
manifest = services.dataset_files_write(version=version, folder=VersionFolder(__import__("pathlib").Path({out!r})))
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the WebDataset shard writers (EXPORT_PROCESSES)
cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime + children.ru_utime + children.ru_stime
print(json.dumps({{"seconds": seconds, "cpu_seconds": cpu, "processes": services.export_processes(),
                  "files": manifest["file_count"], "bytes": manifest["total_bytes"],
                  "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                  "peak_child_rss_mb": round(children.ru_maxrss / 1024, 1)}}))
"""

# CPU: the export's is the user + system time of dataset_files_write (all its threads and worker processes),
# not the start-up; tar's is the tar process's. Peak RSS: the export process's, and separately the largest of
# its worker processes' (at most EXPORT_PROCESSES run at once, so the sum stays below their product).
TAR = """
import json, resource, subprocess, time
started = time.perf_counter()
subprocess.run(["tar", "-cf", {out!r}, "-C", {media!r}, "images"], check=True)
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({{"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}}))
"""


def run(code: str, env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def sync() -> None:
    os.sync()  # flush the previous step's dirty pages so that no step pays for another's writes


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _summary(runs: list[dict], tar_runs: list[dict]) -> dict:
    seconds = statistics.median(r["seconds"] for r in runs)
    cpu = statistics.median(r["cpu_seconds"] for r in runs)
    tar_seconds = statistics.median(r["seconds"] for r in tar_runs)
    tar_cpu = statistics.median(r["cpu_seconds"] for r in tar_runs)
    return {
        "seconds_median": round(seconds, 3),
        "cpu_seconds_median": round(cpu, 3),
        "seconds": [round(r["seconds"], 3) for r in runs],
        "cpu_seconds": [round(r["cpu_seconds"], 3) for r in runs],
        "tar_speed_ratio": round(tar_seconds / seconds, 3),
        "tar_cpu_ratio": round(tar_cpu / cpu, 3),
        "tar_speed_ratio_per_round": [
            round(t["seconds"] / r["seconds"], 3) for t, r in zip(tar_runs, runs, strict=True)
        ],
        "files": runs[0].get("files"),
        "bytes": runs[0].get("bytes"),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "peak_child_rss_mb": max(r.get("peak_child_rss_mb", 0) for r in runs),
        "processes": runs[0].get("processes"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (0: only the setup, with --keep)")
    parser.add_argument("--boxed", type=float, default=0.42, help="fraction of the images with a box")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL database URL; a scratch database <name>_bench_<images> is made on its server",
    )
    parser.add_argument("--dir", help="where the work folder goes (default: the system's temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and the scratch database")
    parser.add_argument("--reuse", help="a work folder left by --keep: skip the setup")
    parser.add_argument("--formats", default="imagenet,webdataset", help="the exports timed, comma-separated")
    args = parser.parse_args()
    work = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="synsight-export-bench-", dir=args.dir))
    env = {**os.environ, "SYNSIGHT_DATA_DIR": str(work), "MEDIA_ROOT": str(work / "media"),
           "NLTK_DATA_DIR": str(ROOT / "data" / "nltk_data"), "DJANGO_SETTINGS_MODULE": "config.settings",
           "EXPORT_ROOT": str(work / "exports"), "LOG_LEVEL": "WARNING"}  # fmt: skip
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    scratch = None
    try:
        if args.database_url:
            import psycopg

            base, name = args.database_url.rsplit("/", 1)
            scratch = f"{name}_bench_{args.images}"
            env["DATABASE_URL"] = f"{base}/{scratch}"
            if not args.reuse:
                with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:  # the URL's may not exist
                    conn.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")
                    conn.execute(f"CREATE DATABASE {scratch}")
        if args.reuse:
            setup = json.loads((work / "setup.json").read_text())
        else:
            subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
            started = time.perf_counter()
            setup = run(SETUP.format(images=args.images, boxed=args.boxed), env)
            setup["setup_seconds"] = round(time.perf_counter() - started, 1)
            (work / "setup.json").write_text(json.dumps(setup))
        figures = {
            "images": setup.get("images", args.images),
            "boxed_images": setup.get("boxed_images", 0),
            "database": "postgresql" if scratch else "sqlite",
            "image_bytes": setup["image_bytes"],
            "setup_seconds": setup["setup_seconds"],
            "snapshot_seconds": {k: v["snapshot_seconds"] for k, v in setup["versions"].items()},
            "link_originals": os.environ.get("EXPORT_LINK_ORIGINALS", "1") not in {"0", "false", "no"},
            "rounds": args.rounds,
            "cpus": os.cpu_count(),
            "load_average_before": load(),
        }
        if args.rounds <= 0:
            print(json.dumps(figures, indent=2))
            return
        media = str(work / "media")
        sync()
        # Outputs are removed only with the work folder: on a filesystem mounted with "discard", deleting 10^5
        # files takes minutes and would load the disk under the next step.
        outputs = work / f"outputs-{os.getpid()}"
        outputs.mkdir(parents=True)
        run(TAR.format(out=str(outputs / "warm.tar"), media=media), env)  # warm the page cache
        formats = [f for f in ("imagenet", "webdataset") if f in args.formats.split(",")]
        runs: dict[str, list[dict]] = {"tar": [], **{f: [] for f in formats}}
        for round_ in range(args.rounds):
            sync()
            runs["tar"].append(run(TAR.format(out=str(outputs / f"plain-{round_}.tar"), media=media), env))
            for fmt in formats:
                out = outputs / f"{fmt}-{round_}"
                sync()
                runs[fmt].append(run(EXPORT.format(version_id=setup["versions"][fmt]["id"], out=str(out)), env))
        figures["load_average_after"] = load()
        figures["tar"] = {
            "seconds_median": round(statistics.median(r["seconds"] for r in runs["tar"]), 3),
            "cpu_seconds_median": round(statistics.median(r["cpu_seconds"] for r in runs["tar"]), 3),
            "seconds": [round(r["seconds"], 3) for r in runs["tar"]],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs["tar"]),
        }
        for fmt in formats:
            figures[fmt] = _summary(runs[fmt], runs["tar"])
        figures["targets"] = {"tar_speed_ratio_min": 0.8, "peak_rss_mb_max": 300}
        figures["met"] = all(
            figures[f]["tar_speed_ratio"] >= 0.8
            and figures[f]["peak_rss_mb"] + (figures[f]["processes"] or 0) * figures[f]["peak_child_rss_mb"] < 300
            for f in formats
        )
        print(json.dumps(figures, indent=2))
    finally:
        if not (args.keep or args.reuse):
            shutil.rmtree(work, ignore_errors=True)
            if scratch:
                import psycopg

                with psycopg.connect(f"{args.database_url.rsplit('/', 1)[0]}/postgres", autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")


if __name__ == "__main__":
    main()

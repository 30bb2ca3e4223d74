"""Writes of the export app: create a dataset version, take its snapshot, build its files, verify a
rebuild. The API, the admin, the management command and the Celery task all call these.

A version's life: ``dataset_version_create`` (validated options, permission, a pending row; the build job
is enqueued after commit) → ``dataset_version_build`` (the job: claims the row, takes the snapshot in one
transaction, writes every format into a private folder, renames it into place, records the manifest hash)
→ done, and immutable: nothing here updates a done version; a change is a new version.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from itertools import groupby
from operator import itemgetter
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from annotation.errors import disk_full, hidden_character, paths_cut, shown
from annotation.models import (
    AuditJudgement,
    Box,
    BoxJob,
    Campaign,
    CampaignSynset,
    Candidate,
    DecisionOverride,
    GoldItem,
    Vote,
)
from export import datasheet, files, integrity, selectors
from export.errors import Conflict, ExportError, Forbidden
from export.files import VersionFolder, json_bytes, safe_relative
from export.formats import DEFAULT_FORMATS, FORMATS
from export.formats.base import Context
from export.models import DatasetBox, DatasetImage, DatasetLabel, DatasetVersion
from taxonomy.models import WNID_PATTERN, SynsetClosure, wnid_from_offset
from workers.models import LedgerEntry
from workers.roles import Role
from workers.services import user_has_role

log = logging.getLogger(__name__)

SNAPSHOT_BATCH = 2000
PROGRESS_EVERY = 500  # items between progress writes
STALE_AFTER = timedelta(minutes=15)  # a running build silent this long is taken over by a redelivered job
MAX_VERSION = 1_000_000  # an explicit version number above this is refused (the column is a 32-bit integer)
# The exporter format: the bytes this code writes for a given snapshot. Bump it with any change that writes
# other bytes for the same snapshot (a format's layout, a file added, the datasheet's wording, the manifest),
# so that ``export_dataset --verify`` of a version built before says "written by format N, this code writes
# M" instead of only "differs". Recorded on each version as it finishes (DatasetVersion.exporter_format).
# 1: the first numbered format (2026-12-07).
# 2: the datasheet reports the researchers' precision audit (2026-12-07).
EXPORTER_FORMAT = 2
DEFAULT_OPTIONS = {
    "synsets": None,  # None: every synset of the campaigns
    "min_confidence": 0.0,
    "include_ancestors": False,
    "split": {"train": 0.8, "val": 0.1, "test": 0.1, "seed": 0},
    "image_size": {"policy": "original", "max_side": None},
    "formats": DEFAULT_FORMATS,
    "shard_max_images": 10_000,
    "shard_max_bytes": 1_000_000_000,
}


def export_root() -> Path:
    """EXPORT_ROOT (setting or environment variable), else DATA_DIR/exports."""
    configured = getattr(settings, "EXPORT_ROOT", None) or os.environ.get("EXPORT_ROOT")
    return Path(configured).expanduser() if configured else Path(settings.DATA_DIR) / "exports"


def version_folder(version: DatasetVersion) -> Path:
    return export_root() / version.output_dir


# ---- options -----------------------------------------------------------------------------------------------


def _number(value, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ExportError(f"{name} must be a number from {low} to {high}; got {shown(value)}.")
    return float(value)


def _integer(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ExportError(f"{name} must be a whole number from {low} to {high}; got {shown(value)}.")
    return value


def options_normalise(options: dict | None) -> dict:
    """Every option with its default filled in, checked; ExportError with a sentence otherwise."""
    if options is not None and not isinstance(options, dict):
        raise ExportError("options must be an object of option names and values.")
    options = dict(options or {})
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ExportError(f"Unknown option {shown(unknown[0])}; known: {', '.join(DEFAULT_OPTIONS)}.")
    out = {**DEFAULT_OPTIONS, **options}
    if out["synsets"] is not None:
        if not isinstance(out["synsets"], list) or not all(
            isinstance(w, str) and re.match(WNID_PATTERN, w) for w in out["synsets"]
        ):
            raise ExportError("synsets must be a list of wnids such as n02084071.")
        if not out["synsets"]:
            raise ExportError("synsets names no synset; leave it out to export every synset of the campaigns.")
        out["synsets"] = sorted(set(out["synsets"]))
    out["min_confidence"] = _number(out["min_confidence"], "min_confidence", 0.0, 1.0)
    if not isinstance(out["include_ancestors"], bool):
        raise ExportError("include_ancestors must be true or false.")
    if out["split"] is not None and not isinstance(out["split"], dict):
        raise ExportError('split must be an object such as {"train": 0.8, "val": 0.1, "test": 0.1, "seed": 0}.')
    given = out["split"] or {}
    if set(given) - {"train", "val", "test", "seed"}:
        raise ExportError("split takes train, val and test fractions and a seed.")
    # A split naming any fraction names them all: those it leaves out are 0 ({"train": 1}: everything in train).
    named = {"train", "val", "test"} & set(given)
    split = {**DEFAULT_OPTIONS["split"], **({k: 0.0 for k in ("train", "val", "test")} if named else {}), **given}
    fractions = {k: _number(split[k], f"split.{k}", 0.0, 1.0) for k in ("train", "val", "test")}
    if abs(sum(fractions.values()) - 1.0) > 1e-9:
        raise ExportError(f"The split fractions must add up to 1; they add up to {sum(fractions.values()):g}.")
    out["split"] = {**fractions, "seed": _integer(split["seed"], "split.seed", 0, 2**31 - 1)}
    if out["image_size"] is not None and not isinstance(out["image_size"], dict):
        raise ExportError('image_size must be an object such as {"policy": "resized", "max_side": 256}.')
    size = {**DEFAULT_OPTIONS["image_size"], **(out["image_size"] or {})}
    if set(size) != {"policy", "max_side"}:
        raise ExportError("image_size takes a policy ('original' or 'resized') and a max_side.")
    if not isinstance(size["policy"], str):
        raise ExportError("image_size.policy must be 'original' or 'resized' (with max_side).")
    if size["policy"] == "original":
        size = {"policy": "original", "max_side": None}
    elif size["policy"] == "resized":
        size = {"policy": "resized", "max_side": _integer(size["max_side"], "image_size.max_side", 16, 8192)}
    else:
        raise ExportError("image_size.policy must be 'original' or 'resized' (with max_side).")
    out["image_size"] = size
    formats = out["formats"]
    # Each name is checked to be a string before the registry lookup: a list or an object is unhashable.
    if not isinstance(formats, list) or not formats or any(not isinstance(f, str) or f not in FORMATS for f in formats):
        raise ExportError(f"formats must be a non-empty list of: {', '.join(FORMATS)}.")
    out["formats"] = [f for f in FORMATS if f in formats]  # registry order
    out["shard_max_images"] = _integer(out["shard_max_images"], "shard_max_images", 1, 10_000_000)
    out["shard_max_bytes"] = _integer(out["shard_max_bytes"], "shard_max_bytes", 1 << 20, 1 << 40)
    return out


# ---- create ------------------------------------------------------------------------------------------------


def dataset_version_create(
    *, user: User, name: str, campaign_ids: list[int], options: dict | None = None, notes: str = "",
    version: int | None = None,
) -> DatasetVersion:  # fmt: skip
    """A pending version of the given campaigns; the build job starts after commit.

    Admins may export any campaign, researchers only their own; anyone else gets Forbidden and nothing is
    written. ``version`` defaults to one more than the name's latest."""
    is_admin = user_has_role(user, Role.ADMIN)
    if not is_admin and not user_has_role(user, Role.RESEARCHER):
        raise Forbidden("Only admins, and researchers for their own campaigns, may create dataset versions.")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ExportError("A dataset version needs a name of 1 to 200 characters.")
    if hidden := hidden_character(name):
        raise ExportError(f"A dataset version's name may not hold control or text-direction characters ({hidden}).")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or
                                not 1 <= version <= MAX_VERSION):  # fmt: skip
        raise ExportError(f"version must be a whole number from 1 to {MAX_VERSION:,}; got {shown(version)}.")
    normalised = options_normalise(options)
    ids = sorted({int(i) for i in campaign_ids or []})
    if not ids:
        raise ExportError("Name at least one campaign to export.")
    campaigns = list(Campaign.objects.filter(id__in=ids).order_by("id"))
    if len(campaigns) != len(ids):
        missing = sorted(set(ids) - {c.id for c in campaigns})
        raise ExportError(f"No campaign {missing[0]}.")
    if not is_admin and any(c.owner_id != user.id for c in campaigns):
        raise Forbidden("Researchers may export only their own campaigns; ask an admin for the others.")
    if normalised["synsets"] is not None:
        known = {
            wnid_from_offset(s)
            for s in CampaignSynset.objects.filter(campaign__in=campaigns).values_list("synset_id", flat=True)
        }
        outside = [w for w in normalised["synsets"] if w not in known]
        if outside:
            raise ExportError(f"{outside[0]} is not a synset of the chosen campaigns.")
    try:
        with transaction.atomic():
            same_name = DatasetVersion.objects.filter(name=name)
            visible = selectors.versions_visible(user=user).values("id")
            if same_name.exclude(id__in=visible).exists():
                # Names are one namespace, and a name's versions one series: a version carries the splits of the
                # name's previous one (_splits_source). Another researcher's "shapes" went on as v2 of someone
                # else's series, numbered after versions it cannot see and with their splits.
                raise Conflict(
                    f"The name {name} is used by dataset versions you cannot see (another researcher's); "
                    "choose another name."
                )
            unfinished = (
                same_name.filter(status__in=[DatasetVersion.Status.PENDING, DatasetVersion.Status.RUNNING])
                .order_by("version")
                .first()
            )
            if unfinished is not None:
                # A second click would build the whole dataset again, and a version started now could not carry
                # the splits of the one being built (it is not done yet): one build per name at a time.
                raise Conflict(
                    f"{name} v{unfinished.version} is still being built ({unfinished.status}); build the next "
                    "version of this name when it is done."
                )
            # Only a failed version the caller may see is theirs to replace (QA: another researcher's failed version
            # of the name was deleted by whoever created the name next).
            replaceable = same_name.filter(status=DatasetVersion.Status.FAILED, id__in=visible)
            if version is None:
                # A failed version of the caller's does not count: building the name again retries it under its
                # number.
                latest = same_name.exclude(id__in=replaceable.values("id")).aggregate(v=Max("version"))["v"]
                version = (latest or 0) + 1
            # That failed version of this name and number is replaced (it has no files; its partial snapshot rows
            # go with it), so a failed build never blocks its name or number. Any other is a conflict below.
            replaceable.filter(version=version).delete()
            row = DatasetVersion.objects.create(
                name=name, version=version, notes=notes or "", options=normalised, created_by=user
            )
            row.output_dir = f"dataset-{row.id}"
            row.save(update_fields=["output_dir"])
            row.campaigns.set(campaigns)
            from export import tasks

            transaction.on_commit(lambda: tasks.dataset_version_build.delay(row.id))
    except IntegrityError:
        raise Conflict(f"{name} v{version} exists already; versions are immutable, create a new one.") from None
    return row


# ---- snapshot ----------------------------------------------------------------------------------------------


def shuffle_key(seed: int, image_id: int) -> int:
    """A seeded, platform-independent order: the first 8 bytes of SHA-256 as a signed 64-bit integer."""
    digest = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def split_sizes(n: int, fractions: dict) -> tuple[int, int, int]:
    """(train, val, test) counts for n images: val and test rounded half up, train takes the rest."""
    val = math_floor_half(n * fractions["val"])
    test = min(n - val, math_floor_half(n * fractions["test"]))
    return n - val - test, val, test


def math_floor_half(x: float) -> int:
    return int(x + 0.5 + 1e-9)


def _selected_synsets(version: DatasetVersion) -> list[int]:
    ids = set(CampaignSynset.objects.filter(campaign__in=version.campaigns.all()).values_list("synset_id", flat=True))
    if version.options["synsets"] is not None:
        ids &= {int(w[1:]) for w in version.options["synsets"]}
    return sorted(ids)


def dataset_snapshot_take(*, version: DatasetVersion) -> None:
    """Freeze the version's labels: every accepted candidate of its synsets (posterior ≥ min_confidence, or
    accepted by a researcher's override whatever its posterior) becomes a DatasetLabel; each image a
    DatasetImage with its primary synset and split. One transaction: a crash leaves no half snapshot. Splits
    are stratified per primary synset (``_assign_splits``); ``DatasetVersion.frozen`` records what the
    datasheet needs beyond the rows."""
    options = version.options
    synset_ids = _selected_synsets(version)
    ancestors: dict[int, list[int]] = {}
    if options["include_ancestors"]:
        for descendant, ancestor in SynsetClosure.objects.filter(descendant_id__in=synset_ids).values_list(
            "descendant_id", "ancestor_id"
        ):
            ancestors.setdefault(descendant, []).append(ancestor)
    accepted = Candidate.objects.filter(state=Candidate.State.ACCEPTED, synset_id__in=synset_ids)
    rows = (
        accepted.order_by("image_id", "synset_id")
        .values_list("id", "image_id", "synset_id", "posterior", "model_version")
        .iterator(chunk_size=SNAPSHOT_BATCH)
    )
    seed = options["split"]["seed"]
    min_confidence = options["min_confidence"]
    with transaction.atomic():
        DatasetBox.objects.filter(version=version).delete()
        DatasetLabel.objects.filter(version=version).delete()
        DatasetImage.objects.filter(version=version).delete()
        high_water = {
            "vote_high_water": Vote.objects.aggregate(m=Max("id"))["m"] or 0,
            "ledger_high_water": LedgerEntry.objects.aggregate(m=Max("id"))["m"] or 0,
        }
        overrides = _accept_overrides(synset_ids)
        no_object: dict[int, int] = {}  # synset id -> direct labels whose box job ended no_object
        images: list[tuple] = []
        labels: list[tuple] = []
        n_images = n_labels = n_boxes = 0
        v = version.id
        for image_id, group in groupby(rows, key=itemgetter(1)):
            # A researcher's accept is certain: kept whatever min_confidence; consensus labels below it are not.
            direct = [
                r
                for r in group
                if r[0] in overrides or not min_confidence or (r[3] is not None and r[3] >= min_confidence)
            ]
            if not direct:
                continue
            primary = max(direct, key=lambda r: (r[3] if r[3] is not None else -1.0, -r[2]))
            images.append((v, image_id, primary[2], int(DatasetImage.Split.TRAIN), shuffle_key(seed, image_id)))
            for candidate_id, _, synset_id, posterior, model_version in direct:
                source = overrides.get(candidate_id, DatasetLabel.Source.CONSENSUS)
                if source != DatasetLabel.Source.CONSENSUS:
                    model_version = OVERRIDE_MODEL_VERSION
                labels.append((v, image_id, synset_id, candidate_id, posterior, model_version, True, source))
            if ancestors:
                implied: dict[int, float | None] = {}
                direct_ids = {r[2] for r in direct}
                for _, _, synset_id, posterior, _ in direct:
                    for ancestor in ancestors.get(synset_id, ()):
                        if ancestor not in direct_ids:
                            best = implied.get(ancestor)
                            implied[ancestor] = posterior if best is None or (posterior or 0) > best else best
                for ancestor in sorted(implied):
                    labels.append((v, image_id, ancestor, None, implied[ancestor], "", False, 0))
            if len(images) >= SNAPSHOT_BATCH or len(labels) >= SNAPSHOT_BATCH * 4:
                n_images, n_labels = n_images + len(images), n_labels + len(labels)
                n_boxes += _flush(v, images, labels, no_object)
        n_images, n_labels = n_images + len(images), n_labels + len(labels)
        n_boxes += _flush(v, images, labels, no_object)
        _analyze(DatasetImage, DatasetLabel, DatasetBox)
        splits_from = _assign_splits(version)
        frozen = {
            "synsets": synset_ids,
            "campaigns": [{"id": c.id, "name": c.name} for c in version.campaigns.order_by("id")],
            "gold_items": GoldItem.objects.filter(synset_id__in=synset_ids).count(),
            "boxes_no_object": {wnid_from_offset(k): no_object[k] for k in sorted(no_object)},
            "splits_from": splits_from,
            "audit": _audit_freeze(version, synset_ids),
        }
        DatasetVersion.objects.filter(id=version.id).update(
            snapshot_at=timezone.now(), images=n_images, labels=n_labels, boxes=n_boxes, frozen=frozen, **high_water
        )
    version.refresh_from_db()


def _audit_freeze(version: DatasetVersion, synset_ids: list[int]) -> dict[str, list[int]]:
    """The precision audit as it stands at the snapshot (a verdict given or changed later must not change a
    rebuild): per synset with verdicts, [judged, judged right, labels of this version judged wrong]. Every verdict
    on the synset's candidates counts, those since rejected included: the audit measures consensus, and the
    unjudged labels are as likely to be wrong as the judged ones were."""
    figures: dict[int, list[int]] = {}
    for synset_id, correct, n in (
        AuditJudgement.objects.filter(synset_id__in=synset_ids)
        .values_list("synset_id", "correct").annotate(n=Count("id")).order_by()
    ):  # fmt: skip
        entry = figures.setdefault(synset_id, [0, 0, 0])
        entry[0] += n
        entry[1] += n if correct else 0
    wrong = AuditJudgement.objects.filter(synset_id__in=synset_ids, correct=False).values("candidate_id")
    for synset_id, n in (
        DatasetLabel.objects.filter(version=version, direct=True, candidate_id__in=wrong)
        .values_list("synset_id").annotate(n=Count("id")).order_by()
    ):  # fmt: skip
        figures[synset_id][2] = n
    return {wnid_from_offset(k): figures[k] for k in sorted(figures)}


OVERRIDE_MODEL_VERSION = "override"  # the model_version of a label a researcher's override accepted


def _accept_overrides(synset_ids: list[int]) -> dict[int, int]:
    """Candidates of these synsets whose latest DecisionOverride is ``accept`` → the label source: OVERRIDE, or
    OVERRIDE_AGAINST when consensus had said absent (the candidate was rejected, or its posterior was below
    0.5, when the researcher accepted it). Overrides are researchers' actions, few beside the labels: one
    query, ordered, the latest per candidate kept."""
    latest: dict[int, tuple[str, str, float | None]] = {}
    for candidate_id, action, previous_state, previous_posterior in (
        DecisionOverride.objects.filter(candidate__synset_id__in=synset_ids)
        .order_by("candidate_id", "id")
        .values_list("candidate_id", "action", "previous_state", "previous_posterior")
    ):
        latest[candidate_id] = (action, previous_state, previous_posterior)
    sources = {}
    for candidate_id, (action, previous_state, previous_posterior) in latest.items():
        if action != DecisionOverride.Action.ACCEPT:
            continue
        against = previous_state == Candidate.State.REJECTED or (
            previous_posterior is not None and previous_posterior < 0.5
        )
        sources[candidate_id] = DatasetLabel.Source.OVERRIDE_AGAINST if against else DatasetLabel.Source.OVERRIDE
    return sources


FINAL_BOX_JOBS = (BoxJob.State.DONE, BoxJob.State.UNRESOLVED)


def _snapshot_boxes(version_id: int, labels: list[tuple], no_object: dict[int, int]) -> int:
    """Freeze the final boxes of these direct labels (annotation/services/boxes.md): boxes in state
    ``accepted`` (merged duplicates are represented by their merged box) whose job is ``done`` (coverage
    confirmed) or ``unresolved`` (out of rounds: the accepted boxes are kept, coverage is not confirmed,
    ``covered=False``). Boxes of a job still in progress are left out, so that an exported image never has a
    half-drawn set of boxes. Candidates are shared by every campaign over the same synset, so are their
    boxes. Read per batch of the snapshot's candidate ids (by the index on the box's candidate), not by a
    join on the new labels: PostgreSQL planned that join as a nested loop (the new rows are in no statistics
    yet), minutes for 10^5 labels. Returns the number of boxes frozen; counts into ``no_object`` (per synset)
    the labels whose box job ended ``no_object`` (box workers said the object is absent)."""
    where = {row[3]: (row[1], row[2]) for row in labels if row[6]}  # candidate id -> (image id, synset id)
    ids = sorted(where)
    count = 0
    done = BoxJob.State.DONE
    for start in range(0, len(ids), SNAPSHOT_BATCH):
        rows = [
            (version_id, *where[candidate_id], candidate_id, box_id, x1, y1, x2, y2, posterior, job_state == done)
            for box_id, candidate_id, x1, y1, x2, y2, posterior, job_state in Box.objects.filter(
                state=Box.State.ACCEPTED,
                job__state__in=FINAL_BOX_JOBS,
                candidate_id__in=ids[start : start + SNAPSHOT_BATCH],
            )
            .order_by("id")
            .values_list("id", "candidate_id", "x1", "y1", "x2", "y2", "posterior", "job__state")
        ]
        _insert(DatasetBox, _BOX_COLUMNS, rows)
        count += len(rows)
        for synset_id in BoxJob.objects.filter(
            candidate_id__in=ids[start : start + SNAPSHOT_BATCH], state=BoxJob.State.NO_OBJECT
        ).values_list("synset_id", flat=True):
            no_object[synset_id] = no_object.get(synset_id, 0) + 1
    return count


_IMAGE_COLUMNS = ("version_id", "image_id", "synset_id", "split", "shuffle")
_LABEL_COLUMNS = ("version_id", "image_id", "synset_id", "candidate_id", "posterior", "model_version", "direct",
                  "source")  # fmt: skip
_BOX_COLUMNS = ("version_id", "image_id", "synset_id", "candidate_id", "box_id", "x1", "y1", "x2", "y2", "posterior",
                "covered")  # fmt: skip


def _insert(model, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert plain rows: PostgreSQL's COPY, else one executemany. Snapshot rows are plain values already
    checked by their source tables: building a model instance for each (bulk_create) cost more than the
    insert itself (10^5 images, 10^5 labels, 4·10^4 boxes per snapshot of the benchmark)."""
    if not rows:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})", rows)


def _analyze(*models) -> None:
    """PostgreSQL: refresh the planner's statistics of the snapshot tables inside the snapshot's transaction
    (ANALYZE counts the transaction's own new rows). Autovacuum sees only committed rows, so the queries that
    follow (the box freeze's semi-join on the labels, the split assignment, then the export's reads) were
    planned for nearly empty tables: a nested loop over 4·10^4 boxes × 10^5 labels took minutes."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models))


def _flush(version_id: int, images: list[tuple], labels: list[tuple], no_object: dict[int, int]) -> int:
    """Insert a batch of images and labels and freeze the boxes of its labels; the number of boxes."""
    _insert(DatasetImage, _IMAGE_COLUMNS, images)
    _insert(DatasetLabel, _LABEL_COLUMNS, labels)
    boxes = _snapshot_boxes(version_id, labels, no_object)
    images.clear()
    labels.clear()
    return boxes


def _splits_source(version: DatasetVersion) -> DatasetVersion | None:
    """The latest done version of the same name with a lower number and the same split fractions and seed:
    its images keep their splits in this version. None: today's rule for every image."""
    split = version.options["split"]
    for earlier in (
        DatasetVersion.objects.filter(name=version.name, version__lt=version.version, status=DatasetVersion.Status.DONE)
        .order_by("-version")
        .only("id", "version", "options")
    ):
        if earlier.options.get("split") == split:
            return earlier
    return None


def _assign_splits(version: DatasetVersion) -> int | None:
    """Per primary synset, in shuffle order: the first images to val, the next to test, the rest stay train
    (val and test sizes from ``split_sizes`` of the class's image count).

    Stable across versions: when an earlier done version of the same name has the same fractions and seed
    (``_splits_source``), every image it held keeps its split there (whatever its class now), and only the
    new images fill each class's val, then test, toward the class's target sizes, in shuffle order; a
    carried-over image never moves, so a class can stay above a target when it shrank. Returns that earlier
    version's number, or None.

    One streamed read of the version's images (by synset, shuffle, image id), one read of the earlier
    version's (image id, split) pairs, and one UPDATE per 500 val or test rows."""
    fractions = version.options["split"]
    source = _splits_source(version)
    carried: dict[int, int] = {}
    if source is not None:
        carried = dict(
            DatasetImage.objects.filter(version=source)
            .order_by()
            .values_list("image_id", "split")
            .iterator(chunk_size=SNAPSHOT_BATCH * 5)
        )
    snapshot = DatasetImage.objects.filter(version=version)
    counts = dict(snapshot.order_by().values_list("synset_id").annotate(n=Count("id")))
    rows = (
        snapshot.order_by("synset_id", "shuffle", "image_id").values_list("synset_id", "id", "image_id")
        .iterator(chunk_size=SNAPSHOT_BATCH * 5)
    )  # fmt: skip
    val, test, train = DatasetImage.Split.VAL, DatasetImage.Split.TEST, DatasetImage.Split.TRAIN
    chosen: dict[int, list[int]] = {val: [], test: []}
    for synset_id, group in groupby(rows, key=itemgetter(0)):
        _, n_val, n_test = split_sizes(counts[synset_id], fractions)
        if not carried:
            for n, (_, row_id, _) in enumerate(group):
                if n < n_val:
                    chosen[val].append(row_id)
                elif n < n_val + n_test:
                    chosen[test].append(row_id)
                else:
                    break
            continue
        group = list(group)  # one class: carried images first counted, then new ones placed
        kept = [carried.get(image_id) for _, _, image_id in group]
        room = {val: n_val - kept.count(val), test: n_test - kept.count(test)}
        for (_, row_id, _), before in zip(group, kept, strict=True):
            split = before
            if split is None:
                split = val if room[val] > 0 else test if room[test] > 0 else train
                if split != train:
                    room[split] -= 1
            if split != train:
                chosen[split].append(row_id)
    for split, ids in chosen.items():
        for start in range(0, len(ids), 500):
            DatasetImage.objects.filter(id__in=ids[start : start + 500]).update(split=split)
    return source.version if source is not None else None


# ---- build -------------------------------------------------------------------------------------------------


class _Progress:
    """Counts items written and stores the fraction every PROGRESS_EVERY items (with a heartbeat)."""

    def __init__(self, version: DatasetVersion, total: int, persist: bool):
        self.version_id, self.total, self.done, self.persist = version.id, max(total, 1), 0, persist
        self._last = 0

    def tick(self, n: int) -> None:
        self.done += n
        if self.persist and self.done - self._last >= PROGRESS_EVERY:
            self._last = self.done
            self.save(phase="writing")

    def save(self, *, phase: str, fraction: float | None = None) -> None:
        if not self.persist:
            return
        value = fraction if fraction is not None else 0.05 + 0.9 * min(self.done / self.total, 1.0)
        DatasetVersion.objects.filter(id=self.version_id).update(
            progress=round(value, 4), phase=phase, heartbeat=timezone.now()
        )


def _info(version: DatasetVersion) -> dict:
    model_versions = sorted(
        set(
            DatasetLabel.objects.filter(version=version)
            .exclude(model_version__in=["", OVERRIDE_MODEL_VERSION])
            .values_list("model_version", flat=True)
            .distinct()
        )
    )
    return {
        "id": version.id,
        "name": version.name,
        "version": version.version,
        "notes": version.notes,
        "created": version.created.isoformat().replace("+00:00", "Z"),
        "snapshot_at": version.snapshot_at.isoformat().replace("+00:00", "Z"),
        "campaigns": selectors.version_campaigns(version=version),
        "options": version.options,
        "options_json": json_bytes(version.options).decode().replace("\n", "").replace(" ", ""),
        "model_versions": model_versions,
        "vote_high_water": version.vote_high_water,
        "ledger_high_water": version.ledger_high_water,
    }


def _source_path():
    """Local storage: storage name -> absolute path of the original (the name checked like an export path,
    so a stored name can never reach outside MEDIA_ROOT); None for any other storage."""
    if isinstance(default_storage, FileSystemStorage):
        location = os.path.abspath(default_storage.location)
        return lambda name: f"{location}/{safe_relative(name)}"
    return None


def link_originals() -> bool:
    """EXPORT_LINK_ORIGINALS (setting or environment variable, default on): unchanged originals on local
    storage are hard-linked into the version folder when it is on the same filesystem (no bytes copied;
    the export then shares the stored file, which is never modified: storage is content-addressed). Off:
    the kernel copies them."""
    configured = getattr(settings, "EXPORT_LINK_ORIGINALS", None)
    if configured is None:
        configured = os.environ.get("EXPORT_LINK_ORIGINALS", "1").strip().lower() not in {"0", "false", "no", "off"}
    return bool(configured)


def io_threads() -> int:
    """EXPORT_IO_THREADS (setting or environment variable, default 4): threads that create, link and write
    the many small files of a build (VersionFolder.parallel) and read originals ahead of the WebDataset
    writer, while the writer goes on; 0 does it all inline."""
    configured = getattr(settings, "EXPORT_IO_THREADS", None)
    if configured is None:
        configured = os.environ.get("EXPORT_IO_THREADS", "4")
    return max(0, int(configured))


def export_processes() -> int:
    """EXPORT_PROCESSES (setting or environment variable; default: the number of CPUs, at most 4): worker
    processes that read originals into WebDataset shards and hash and write them, one shard each, while the
    build reads the next rows; 0 writes the shards in the build's own process. The bytes are the same."""
    configured = getattr(settings, "EXPORT_PROCESSES", None)
    if configured is None:
        configured = os.environ.get("EXPORT_PROCESSES", str(min(4, os.cpu_count() or 1)))
    return max(0, int(configured))


def _opener():
    """Opens stored originals. Local storage: the file itself (the name checked like an export path, so a
    stored name can never reach outside MEDIA_ROOT), skipping Django's File wrapper and path joining, which
    cost a third of the per-image time; any other storage (S3): ``storage.open``."""
    if isinstance(default_storage, FileSystemStorage):
        location = os.path.abspath(default_storage.location)
        return lambda name: open(os.path.join(location, safe_relative(name)), "rb")
    return lambda name: default_storage.open(name, "rb")


def dataset_files_write(*, version: DatasetVersion, folder: VersionFolder, progress: _Progress | None = None) -> dict:
    """Write every requested format, the datasheet, version.json and manifest.json from the snapshot into
    ``folder``; returns the manifest. A pure function of the snapshot (and of the vote and ledger rows up to
    its high-water marks): the same snapshot gives the same bytes."""
    progress = progress or _Progress(version, 1, persist=False)
    info = _info(version)
    options = version.options
    ctx = Context(
        folder=folder,
        version=info,
        mtime=int(version.snapshot_at.timestamp()),
        categories=selectors.version_categories(version=version),
        classes=selectors.version_classes(version=version),
        items=lambda *, split, order: selectors.version_items(version=version, split=split, order=order),
        open_file=_opener(),
        rows=lambda name: selectors.version_rows(version=version, name=name),
        max_side=options["image_size"]["max_side"],
        tick=progress.tick,
        options=options,
        source_path=_source_path(),
        link_originals=link_originals(),
        io_threads=io_threads(),
        processes=export_processes(),
    )
    with folder.parallel(io_threads()):
        for name in options["formats"]:
            progress.save(phase=name)
            FORMATS[name](ctx)
    progress.save(phase="datasheet")
    sheet = datasheet.datasheet_build(version=version, info=info)
    folder.write_json("datasheet.json", sheet)
    folder.write_bytes("datasheet.md", datasheet.datasheet_markdown(sheet).encode())
    folder.write_json("version.json", {k: v for k, v in info.items() if k != "options_json"})
    return folder.write_manifest()


# A pending version this old has lost its build job (queued on commit; the broker may have been down).
PENDING_GRACE = timedelta(minutes=1)


def dataset_versions_stalled() -> list[int]:
    """Versions whose build job was lost: pending for longer than PENDING_GRACE, or running with a heartbeat
    older than STALE_AFTER (the worker died). dataset_versions_resume queues them again."""
    now = timezone.now()
    pending = Q(status=DatasetVersion.Status.PENDING, created__lt=now - PENDING_GRACE)
    stale = Q(status=DatasetVersion.Status.RUNNING, heartbeat__lt=now - STALE_AFTER)
    return list(DatasetVersion.objects.filter(pending | stale).order_by("id").values_list("id", flat=True))


def _claim(version_id: int) -> bool:
    """Conditional UPDATE: pending → running, or take over a running build whose heartbeat went stale."""
    now = timezone.now()
    fresh = DatasetVersion.objects.filter(id=version_id, status=DatasetVersion.Status.PENDING)
    if fresh.update(status=DatasetVersion.Status.RUNNING, heartbeat=now, phase="snapshot") == 1:
        return True
    stale = DatasetVersion.objects.filter(
        id=version_id, status=DatasetVersion.Status.RUNNING, heartbeat__lt=now - STALE_AFTER
    )
    return stale.update(heartbeat=now, phase="snapshot") == 1


@contextmanager
def _heartbeat(version_id: int) -> Iterator[None]:
    """While the build runs, a thread writes its heartbeat every fifth of STALE_AFTER, on a connection of its own:
    the snapshot is one transaction and writes no progress, and at ImageNet's size it runs for minutes; past
    STALE_AFTER the resume job took a live build over (tests/export/test_build_liveness.py). A job that dies
    stops beating with it, and its version goes stale as before."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(STALE_AFTER.total_seconds() / 5):
                try:
                    DatasetVersion.objects.filter(id=version_id, status=DatasetVersion.Status.RUNNING).update(
                        heartbeat=timezone.now()
                    )
                except DatabaseError as error:  # SQLite's one writer busy, a database restarting: next beat
                    log.warning("Dataset version %s: heartbeat not written (%s)", version_id, error)
        finally:
            connection.close()  # this thread's own

    thread = threading.Thread(target=beat, name=f"export-heartbeat-{version_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def dataset_version_build(*, version_id: int) -> DatasetVersion:
    """The build job. Idempotent: a done or failed version, or one another job is building, is left as it
    is. The files go to a private folder renamed into place at the end, so a crash leaves nothing half
    written where downloads look."""
    if not _claim(version_id):
        return DatasetVersion.objects.get(id=version_id)
    with _heartbeat(version_id):
        return _build(version_id)


def _build(version_id: int) -> DatasetVersion:
    version = DatasetVersion.objects.get(id=version_id)
    root = export_root()
    partial = root / f".partial-{version.id}-{uuid.uuid4().hex[:8]}"
    try:
        if version.snapshot_at is None:
            dataset_snapshot_take(version=version)
        units = version.images * sum(1 for f in version.options["formats"] if f != "votes")
        units += version.labels if "votes" in version.options["formats"] else 0
        progress = _Progress(version, units, persist=True)
        progress.save(phase="writing", fraction=0.05)
        with files.scratch_held(partial):  # export_leftovers_remove leaves it alone while this process lives
            manifest = dataset_files_write(version=version, folder=VersionFolder(partial), progress=progress)
            final = root / version.output_dir
            if final.exists():
                shutil.rmtree(final)
            os.replace(partial, final)
        digest = hashlib.sha256((final / "manifest.json").read_bytes()).hexdigest()
        # Only over its own running build (as every write below): a job that lost its claim to another, after
        # stalling past STALE_AFTER, must not overwrite what that one wrote.
        DatasetVersion.objects.filter(id=version.id, status=DatasetVersion.Status.RUNNING).update(
            status=DatasetVersion.Status.DONE, progress=1.0, phase="done", finished=timezone.now(),
            manifest_sha256=digest, total_bytes=manifest["total_bytes"], file_count=manifest["file_count"],
            exporter_format=EXPORTER_FORMAT,
        )  # fmt: skip
    except Exception as error:
        log.exception("Dataset version %s failed", version.id)  # the log keeps the full error, paths included
        shutil.rmtree(partial, ignore_errors=True)
        DatasetVersion.objects.filter(id=version.id, status=DatasetVersion.Status.RUNNING).update(
            status=DatasetVersion.Status.FAILED, phase="failed", finished=timezone.now(),
            error=public_error(error)[:2000],
        )  # fmt: skip
    version.refresh_from_db()
    return version


# An absolute path in an error message: a slash-led run of at least two segments (quotes, spaces, colons and
# commas end it). Its folders are the server's business; the last segment (a stored file's content-hash name,
# an export file) is what a researcher can act on.
def public_error(error: BaseException) -> str:
    """What the version's ``error`` field shows: the kind of error and its message with every absolute
    server path cut to its last segment ("…/name"); the full error goes to the log. A full disk (or quota)
    also says what to do: the build has removed its partial folder, so retrying after freeing space is safe."""
    message = paths_cut(str(error))
    if disk_full(error):
        message += (
            ". The disk that holds the export folder (EXPORT_ROOT) or the temporary folder is full; the files "
            "written so far were removed. Free space, then create the version again with the same name to retry."
        )
    return f"{type(error).__name__}: {message}"


def download_filename(version: DatasetVersion) -> str:
    """``<name>-v<version>.tar`` with the name reduced to letters and digits of any script and ``._-``: runs of
    anything else, with the dots beside them, become one '-', runs of dots one dot; at most 100 characters,
    'dataset' when nothing is left. The response names it with RFC 6266's ``filename*`` when it is not ASCII."""
    safe = re.sub(r"[.-]*-[.-]*", "-", re.sub(r"[^\w.-]+", "-", version.name))  # "/../" is one '-'
    safe = re.sub(r"\.{2,}", ".", safe)
    safe = safe.strip("-._")[:100].strip("-._") or "dataset"
    return f"{safe}-v{version.version}.tar"


def version_download(version: DatasetVersion) -> tuple[int, Callable[[int, int], Iterator[bytes]]]:
    """The done version's folder as one tar (files in manifest order, then manifest.json; the fixed headers of
    ``files.tar_chunks``): its exact length in bytes, computed from the manifest's sizes beforehand (so the
    response carries a Content-Length), and ``chunks(start, stop)``, which streams its bytes ``start`` to
    ``stop`` (exclusive) — the whole archive, or the range a resumed download asks for. Conflict unless the
    version is done; for a failed one, why."""
    if version.status == DatasetVersion.Status.FAILED:
        raise Conflict(
            f"Version {version.id} ({version.name} v{version.version}) failed to build, so there is nothing to "
            f"download: {version.error or 'no reason was recorded'}. Create it again with the same name to retry."
        )
    if version.status != DatasetVersion.Status.DONE:
        raise Conflict(f"Version {version.id} is {version.status}; only a done version downloads.")
    folder = version_folder(version)
    prefix = f"{version.output_dir}/"
    mtime = int(version.snapshot_at.timestamp())

    def members() -> Iterator[tuple[str, int]]:  # streamed twice: a large version lists a million files
        yield from ((e["path"], e["size"]) for e in manifest_entries(folder))
        yield "manifest.json", (folder / "manifest.json").stat().st_size

    def chunks(start: int, stop: int) -> Iterator[bytes]:
        return files.tar_chunks(folder, members(), mtime, prefix=prefix, start=start, stop=stop)

    members_bytes = sum(files.tar_member_bytes(size, prefix + name, mtime) for name, size in members())
    return len(files.END_OF_ARCHIVE) + members_bytes, chunks


def manifest_entries(folder: Path) -> Iterator[dict]:
    """The files listed in a version folder's manifest.json (every file but the manifest itself), streamed."""
    return files.manifest_entries(folder / "manifest.json")


@dataclass
class Verification:
    """What ``dataset_version_verify`` found. ``folder``: the published files against their manifest and the
    manifest against the recorded hash. ``rebuilt_sha256`` and ``rebuild``: the manifest of a rebuild from
    the snapshot by this code and the files it writes differently (None when no rebuild was asked for)."""

    version: DatasetVersion
    folder: integrity.FolderCheck
    rebuilt_sha256: str | None = None
    rebuild: integrity.ManifestDiff | None = None
    exporter_format: int = EXPORTER_FORMAT

    DAMAGED, REBUILT_DIFFERENTLY, IDENTICAL, INTACT = "damaged", "rebuilt differently", "identical", "intact"

    @property
    def rebuilt_same(self) -> bool | None:
        return None if self.rebuilt_sha256 is None else self.rebuilt_sha256 == self.version.manifest_sha256

    @property
    def verdict(self) -> str:
        """``damaged`` (the published files are not the recorded ones), else ``rebuilt differently`` (intact,
        but this code writes other bytes from the snapshot), ``identical``, or ``intact`` (no rebuild asked)."""
        if not self.folder.intact:
            return self.DAMAGED
        if self.rebuilt_same is None:
            return self.INTACT
        return self.IDENTICAL if self.rebuilt_same else self.REBUILT_DIFFERENTLY

    def sentences(self) -> list[str]:
        """The findings, one sentence each, for an admin."""
        version, folder = self.version, self.folder
        if folder.intact:
            out = [
                f"Published files intact: manifest.json is the recorded one and its {folder.checked:,} files have "
                "the sizes and SHA-256 it lists; no other file."
            ]
        else:
            out = ["Published files damaged:", *(f"  {s}" for s in folder.sentences())]
        if self.rebuilt_same is None:
            return out
        if self.rebuilt_same:
            out.append(f"Rebuilt from the snapshot byte for byte (manifest sha256 {self.rebuilt_sha256}).")
            return out
        out.append(f"Rebuilt from the snapshot with other bytes (manifest sha256 {self.rebuilt_sha256}, recorded "
                   f"{version.manifest_sha256}).")  # fmt: skip
        if self.rebuild is not None:
            out += [f"  {s}" for s in self.rebuild.sentences()]
        if version.exporter_format != self.exporter_format:
            writer = (
                "before exporter formats were numbered" if version.exporter_format is None
                else f"by exporter format {version.exporter_format}"
            )  # fmt: skip
            out.append(
                f"The version was written {writer}; this code writes format {self.exporter_format}, so after an "
                "upgrade a rebuild with other bytes is expected"
                + (" and does not mean the published files are damaged." if folder.intact else ".")
            )
        else:
            out.append(
                f"The version was written by this same exporter format {self.exporter_format}, so an upgrade does "
                "not explain the difference: the snapshot's rows or the stored originals changed, or the exporter "
                "changed its bytes without a new format number."
            )
        return out


def dataset_version_verify(*, version: DatasetVersion, rebuild: bool = True) -> Verification:
    """Check a done version: its published folder against its manifest (every file's size and SHA-256, no
    file missing or extra) and the manifest against the recorded hash; then, unless ``rebuild`` is false,
    rebuild it from its snapshot into a scratch folder (removed afterwards) and compare the manifests, file by
    file. ``Verification.verdict`` tells damaged files from a rebuild that differs from a version written by
    an older exporter format, from identical."""
    if version.status != DatasetVersion.Status.DONE:
        raise Conflict(f"Version {version.id} is {version.status}; only a done version can be verified.")
    published = version_folder(version)
    result = Verification(version=version, folder=integrity.folder_check(published, version.manifest_sha256))
    if not rebuild:
        return result
    scratch = export_root() / f".verify-{version.id}-{uuid.uuid4().hex[:8]}"
    try:
        with files.scratch_held(scratch):  # export_leftovers_remove leaves it alone while this process lives
            dataset_files_write(version=version, folder=VersionFolder(scratch))
            result.rebuilt_sha256 = integrity.file_sha256(str(scratch / "manifest.json"))
            if not result.rebuilt_same and result.folder.manifest == "ok":
                result.rebuild = integrity.manifests_compare(published / "manifest.json", scratch / "manifest.json")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


# ---- leftovers on disk ---------------------------------------------------------------------------------------

# A scratch folder younger than this is left alone even when nobody holds it: its creator may not have taken
# the lock yet (files.scratch_held creates the folder, then locks it).
SCRATCH_GRACE = timedelta(minutes=10)
_SCRATCH = re.compile(r"\.(?:partial|verify)-\d+-[0-9a-f]+")
_VERSION_DIR = re.compile(r"dataset-(\d+)")


def export_leftovers_remove(*, grace: timedelta = SCRATCH_GRACE) -> list[str]:
    """Remove from EXPORT_ROOT what nothing will use again; returns the names removed, sorted.

    * ``.partial-<id>-…`` and ``.verify-<id>-…``: the scratch folder of a build or a verify whose process died
      (killed, out of memory, the machine rebooted; a redelivered build writes a new one), once no live process
      holds it (``files.scratch_held``: a kernel lock, dropped when its process ends) and it is older than
      ``grace``. A build that fails in Python removes its own; these are what a killed one leaves.
    * ``dataset-<id>``: the files of a version whose row was deleted (the Django admin) or that is failed (its
      files renamed into place, then the last database write failed); a failed version is never built again
      under that id (creating its name again makes a new row).
    Done, pending and running versions' folders are never touched."""
    root = export_root()
    if not root.is_dir():
        return []
    now = timezone.now().timestamp()
    removed, version_dirs = [], {}
    for entry in os.scandir(root):
        if not entry.is_dir(follow_symlinks=False):
            continue
        if _SCRATCH.fullmatch(entry.name):
            old_enough = now - entry.stat(follow_symlinks=False).st_mtime >= grace.total_seconds()
            if old_enough and files.scratch_remove_unless_held(Path(entry.path)):
                removed.append(entry.name)
        elif match := _VERSION_DIR.fullmatch(entry.name):
            version_dirs[int(match.group(1))] = entry.name
    kept = DatasetVersion.objects.filter(id__in=version_dirs).exclude(status=DatasetVersion.Status.FAILED)
    for version_id in set(version_dirs) - set(kept.values_list("id", flat=True)):
        shutil.rmtree(root / version_dirs[version_id], ignore_errors=True)
        removed.append(version_dirs[version_id])
    if removed:
        log.warning("Removed export leftovers from %s: %s", root, ", ".join(sorted(removed)))
    return sorted(removed)

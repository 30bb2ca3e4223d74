"""Reads for exports: the frozen snapshot of a version as format Items, its categories and classes, the
votes behind its labels (bounded by the snapshot's high-water mark), and who may see what.

Everything streams: a split's images, labels and boxes through three server-side cursors in the same order,
merged as they arrive; votes merged with labels by candidate id, so no query result is ever held whole.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from itertools import islice

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count, Q, QuerySet

from annotation.models import Image, Vote
from export.formats.base import SPLITS, Box, Category, Item, Label
from export.models import DatasetBox, DatasetImage, DatasetLabel, DatasetVersion
from taxonomy.models import Synset, SynsetClosure, SynsetEdge, wnid_from_offset
from workers.roles import Role
from workers.services import user_has_role

ITEM_BATCH = 2000
VOTE_CHUNK = 10_000


def user_may_export(user: User) -> bool:
    return user_has_role(user, Role.ADMIN) or user_has_role(user, Role.RESEARCHER)


def versions_visible(*, user: User) -> QuerySet[DatasetVersion]:
    """Admins see every version; researchers the ones they created and every version that includes a
    campaign they own (an admin may build a version of a researcher's campaign); others none. Ownership is
    ``Campaign.owner``, as for the campaigns themselves (annotation.selectors.dashboard.campaigns_visible)."""
    versions = DatasetVersion.objects.select_related("created_by").order_by("-id")
    if user_has_role(user, Role.ADMIN):
        return versions
    if user_has_role(user, Role.RESEARCHER):
        owned = DatasetVersion.campaigns.through.objects.filter(campaign__owner=user).values("datasetversion_id")
        return versions.filter(Q(created_by=user) | Q(id__in=owned))
    return versions.none()


def version_campaigns(*, version: DatasetVersion) -> list[dict]:
    """[{"id", "name"}] of the version's campaigns as they were at the snapshot (a campaign renamed since does
    not change a rebuild); live for versions snapshotted before the names were frozen."""
    if "campaigns" in version.frozen:
        return version.frozen["campaigns"]
    return [{"id": c.id, "name": c.name} for c in version.campaigns.order_by("id")]


def version_synset_ids(*, version: DatasetVersion) -> list[int] | None:
    """The synsets chosen at the snapshot (the campaigns' synsets, narrowed by the ``synsets`` option), each a
    class of the version with or without images; None for a version snapshotted before they were frozen."""
    return version.frozen.get("synsets")


def _batched(iterator, size: int):
    while batch := list(islice(iterator, size)):
        yield batch


ITEM_FETCH = 5000  # rows fetched per round trip from each of a split's (at most) three server-side cursors
ITEM_ORDER = {"class": "synset_id", "shuffle": "shuffle"}  # then image id: a total order (an image appears once)


def _ordered_rows(sql: str, params: list) -> Iterator[tuple]:
    """The rows of one query, streamed through a server-side cursor (PostgreSQL) ITEM_FETCH at a time."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(ITEM_FETCH):
            yield from rows


def _split_rows(version: DatasetVersion, split: str, order: str, table, columns: str, then: str) -> Iterator[tuple]:
    """``columns`` of ``table`` joined to the split's DatasetImage rows in the split's item order (then
    ``then`` within an image): the same image order as the items, so the rows merge with them as they stream."""
    quote = connection.ops.quote_name
    images = quote(DatasetImage._meta.db_table)
    table = quote(table._meta.db_table)
    key = ITEM_ORDER[order]
    return _ordered_rows(
        f"SELECT di.image_id, {columns} FROM {images} di"
        f" JOIN {table} t ON t.version_id = %s AND t.image_id = di.image_id"
        f" WHERE di.version_id = %s AND di.split = %s ORDER BY di.{key}, di.image_id, {then}",
        [version.id, version.id, SPLITS.index(split)],
    )


def _grouped(rows: Iterator[tuple], make) -> Iterator[tuple[int, list]]:
    """(image id, [make(row) for its rows]) for consecutive rows of the same image."""
    group: list = []
    current = None
    for row in rows:
        if row[0] != current:
            if group:
                yield current, group
            current, group = row[0], []
        group.append(make(row))
    if group:
        yield current, group


def version_boxes(*, version: DatasetVersion, split: str, order: str) -> Iterator[tuple[int, list[Box]]]:
    """The frozen boxes (DatasetBox) of a split's images that have any, as (image id, boxes) in the split's
    item order; per image by wnid, then in the order the box pipeline accepted them. One streamed query;
    none when the snapshot holds no box."""
    if not version.boxes:
        return iter(())
    wnids: dict[int, str] = {}

    def box(row: tuple) -> Box:
        synset_id = row[1]
        wnid = wnids.get(synset_id) or wnids.setdefault(synset_id, wnid_from_offset(synset_id))
        return Box(wnid, row[2], row[3], row[4], row[5])

    columns = "t.synset_id, t.x1, t.y1, t.x2, t.y2"
    rows = _split_rows(version, split, order, DatasetBox, columns, "t.synset_id, t.box_id")
    return _grouped(rows, box)


def version_items(*, version: DatasetVersion, split: str, order: str) -> Iterator[Item]:
    """The images of one split with their labels and boxes. ``order="class"``: by primary wnid, then image
    id (the ImageNet train folders); ``order="shuffle"``: the seeded shuffle (validation numbering,
    WebDataset samples).

    Three streamed queries per split, each in the items' order: the images, their labels (direct first, by
    synset), their boxes; merged here as they arrive, so nothing is held beyond a fetch. (Before: a query
    for the labels and one for the boxes per batch of 2,000 images, by their ids: four times the round
    trips, and each query parsed and planned anew.)"""
    quote = connection.ops.quote_name
    wnids: dict[int, str] = {}  # synset id -> wnid, formatted once per synset

    def label(row: tuple) -> Label:
        _, synset_id, candidate_id, posterior, model_version, direct = row
        wnid = wnids.get(synset_id) or wnids.setdefault(synset_id, wnid_from_offset(synset_id))
        return Label(wnid, posterior, model_version, candidate_id, bool(direct))  # SQLite returns 0/1

    labels = _grouped(
        _split_rows(version, split, order, DatasetLabel, "t.synset_id, t.candidate_id, t.posterior, t.model_version, "
                    "t.direct", "t.direct DESC, t.synset_id"),
        label,
    )  # fmt: skip
    boxes = version_boxes(version=version, split=split, order=order)
    next_labels = next(labels, None)
    next_boxes = next(boxes, None)
    images = _ordered_rows(
        f"SELECT di.image_id, i.file, i.format, i.width, i.height, i.sha256, i.byte_size, di.synset_id,"
        f" i.medium = i.file"  # the original is its own display version: stored upright (Item.upright)
        f" FROM {quote(DatasetImage._meta.db_table)} di JOIN {quote(Image._meta.db_table)} i ON i.id = di.image_id"
        f" WHERE di.version_id = %s AND di.split = %s ORDER BY di.{ITEM_ORDER[order]}, di.image_id",
        [version.id, SPLITS.index(split)],
    )
    for image_id, file, fmt, width, height, sha256, byte_size, synset_id, upright in images:
        wnid = wnids.get(synset_id) or wnids.setdefault(synset_id, wnid_from_offset(synset_id))
        item_labels = item_boxes = ()
        if next_labels is not None and next_labels[0] == image_id:
            item_labels = tuple(next_labels[1])
            next_labels = next(labels, None)
        if next_boxes is not None and next_boxes[0] == image_id:
            item_boxes = tuple(next_boxes[1])
            next_boxes = next(boxes, None)
        # positional: Item(image_id, file, format, width, height, sha256, byte_size, split, wnid, labels, boxes,
        # upright)
        yield Item(
            image_id, file, fmt, width, height, sha256, byte_size, split, wnid, item_labels, item_boxes, bool(upright)
        )


def version_classes(*, version: DatasetVersion) -> list[str]:
    """Sorted wnids of the classes (the ImageNet folders and mapping, WebDataset class indices): every synset
    chosen at the snapshot, with or without images, so that a class's index does not move between versions
    when another class has no images yet. Versions snapshotted before that: the primary classes of their
    images (as they were built)."""
    chosen = version_synset_ids(version=version)
    if chosen is not None:
        return [wnid_from_offset(i) for i in sorted(chosen)]
    ids = DatasetImage.objects.filter(version=version).order_by("synset_id").values_list("synset_id", flat=True)
    return [wnid_from_offset(i) for i in ids.distinct()]


def version_categories(*, version: DatasetVersion) -> list[Category]:
    """Every chosen synset (with or without images) and every labelled one (implied ancestors), by wnid, with
    its supercategory: the nearest exported ancestor, else its WordNet parent (the lowest offset when it has
    several). ``direct`` is true for a chosen synset (a class)."""
    labelled = set(DatasetLabel.objects.filter(version=version).values_list("synset_id", flat=True).distinct())
    chosen = version_synset_ids(version=version)
    if chosen is not None:
        direct = set(chosen)
    else:
        direct = set(
            DatasetLabel.objects.filter(version=version, direct=True).values_list("synset_id", flat=True).distinct()
        )
    synsets = list(Synset.objects.filter(id__in=labelled | direct).order_by("id"))
    ids = {s.id for s in synsets}
    nearest: dict[int, int] = {}
    for descendant, ancestor in (
        SynsetClosure.objects.filter(descendant_id__in=ids, ancestor_id__in=ids)
        .order_by("descendant_id", "distance", "ancestor_id")
        .values_list("descendant_id", "ancestor_id")
    ):
        nearest.setdefault(descendant, ancestor)
    for child, parent in (
        SynsetEdge.objects.filter(child_id__in=ids - nearest.keys()).order_by("child_id", "parent_id")
        .values_list("child_id", "parent_id")
    ):  # fmt: skip
        nearest.setdefault(child, parent)
    names = {s.id: s.lemmas[0] for s in Synset.objects.filter(id__in=set(nearest.values()) | ids)}
    return [
        Category(
            wnid=s.wnid,
            name=s.lemmas[0],
            words=s.words,
            supercategory=names.get(nearest.get(s.id), ""),
            supercategory_wnid=wnid_from_offset(nearest[s.id]) if s.id in nearest else "",
            direct=s.id in direct,
        )
        for s in synsets
    ]


def worker_code(worker_id: int) -> str:
    """A stable pseudonym: HMAC-SHA256 of the user id under a key derived from SECRET_KEY."""
    key = hashlib.sha256(f"synsight.export.worker-code:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, str(worker_id).encode(), hashlib.sha256).hexdigest()[:16]


def _label_candidates(version: DatasetVersion):
    return DatasetLabel.objects.filter(version=version, direct=True).values("candidate_id")


def version_votes_queryset(version: DatasetVersion) -> QuerySet[Vote]:
    """The votes behind the version's labels that existed at the snapshot (votes are append-only)."""
    return Vote.objects.filter(candidate_id__in=_label_candidates(version), id__lte=version.vote_high_water)


def version_votes(*, version: DatasetVersion) -> Iterator[dict]:
    rows = (
        version_votes_queryset(version)
        .order_by("candidate_id", "id")
        .values_list(
            "candidate_id",
            "candidate__image_id",
            "candidate__synset_id",
            "worker_id",
            "answer",
            "response_ms",
            "is_gold",
            "created",
        )
        .iterator(chunk_size=VOTE_CHUNK)
    )
    codes: dict[int, str] = {}
    for candidate_id, image_id, synset_id, worker_id, answer, ms, is_gold, created in rows:
        if worker_id not in codes:
            codes[worker_id] = worker_code(worker_id)
        yield {
            "candidate_id": candidate_id, "image_id": image_id, "wnid": wnid_from_offset(synset_id),
            "worker": codes[worker_id], "answer": answer, "response_ms": ms, "is_gold": int(is_gold),
            "created": created.isoformat().replace("+00:00", "Z"),
        }  # fmt: skip


def version_consensus(*, version: DatasetVersion) -> Iterator[dict]:
    """One row per direct label with its vote counts: labels and vote aggregates, both by candidate id,
    merged as they stream."""
    split_of = DatasetImage.objects.filter(version=version)
    counts = (
        version_votes_queryset(version)
        .filter(is_gold=False)
        .values("candidate_id")
        .annotate(
            votes=Count("id", filter=Q(answer__lt=2)),
            yes=Count("id", filter=Q(answer=1)),
            no=Count("id", filter=Q(answer=0)),
            cant_tell=Count("id", filter=Q(answer=2)),
            workers=Count("worker_id", distinct=True),
        )
        .order_by("candidate_id")
        .iterator(chunk_size=VOTE_CHUNK)
    )
    pending = next(counts, None)
    labels = (
        DatasetLabel.objects.filter(version=version, direct=True)
        .order_by("candidate_id")
        .values_list("candidate_id", "image_id", "synset_id", "posterior", "model_version")
        .iterator(chunk_size=ITEM_BATCH)
    )
    for batch in _batched(labels, ITEM_BATCH):
        splits = dict(split_of.filter(image_id__in={row[1] for row in batch}).values_list("image_id", "split"))
        for candidate_id, image_id, synset_id, posterior, model_version in batch:
            while pending is not None and pending["candidate_id"] < candidate_id:
                pending = next(counts, None)
            tally = pending if pending is not None and pending["candidate_id"] == candidate_id else {}
            yield {
                "candidate_id": candidate_id, "image_id": image_id, "wnid": wnid_from_offset(synset_id),
                "split": SPLITS[splits[image_id]], "posterior": posterior, "model_version": model_version,
                **{k: tally.get(k, 0) for k in ("votes", "yes", "no", "cant_tell", "workers")},
            }  # fmt: skip


def version_rows(*, version: DatasetVersion, name: str) -> Iterator[dict]:
    if name == "votes":
        return version_votes(version=version)
    if name == "consensus":
        return version_consensus(version=version)
    raise KeyError(name)


def split_counts(*, version: DatasetVersion) -> dict[str, int]:
    counts = dict(DatasetImage.objects.filter(version=version).values_list("split").annotate(n=Count("id")))
    return {name: counts.get(i, 0) for i, name in enumerate(SPLITS)}

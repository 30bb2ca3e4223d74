"""Writes for candidate images: import batches, ingestion with de-duplication, and the staged API imports.

Ingestion (:func:`images_ingest`) is one pipeline for every source. Decoding, hashing and thumbnails run in
``workers`` processes (annotation.imaging, no Django) once a batch has run POOL_AFTER_SECONDS; the main
process decides each file's outcome and writes files and rows, ``CHUNK_SIZE`` files per transaction, so a
crash loses at most one chunk and leaves no rows behind; files written for a chunk that fails are deleted
again.

Outcome of one file for the batch's synset:

* **rejected** — not a usable image (annotation.imaging / annotation.sources / annotation.fetch say why);
* **duplicate** — the same bytes (SHA-256) are already a candidate for this synset; nothing is created.
  The same bytes for *another* synset reuse the stored Image and create a new Candidate;
* **near_duplicate** — the perceptual hash is within ``IMAGE_NEAR_DUPLICATE_DISTANCE`` of a candidate of
  this synset and the mean colour within ``IMAGE_NEAR_DUPLICATE_COLOUR`` of it (the nearest such one is
  named; phash sees only grey levels, see annotation.imaging). The kept copy is the largest: when the new
  file has more pixels and the existing candidate is still ``new`` (no votes yet), the new image replaces the
  old one in that candidate (outcome **accepted**, code ``replaced``) and the old image is deleted after the
  chunk commits if nothing else uses it then (:func:`image_delete_unused`). Once a candidate is being voted on
  its image stays, and the larger copy is reported as near_duplicate;
* **accepted** — a new candidate (state ``new``).

Imports into one synset are serialised by locking its Synset row per chunk (PostgreSQL), so two batches
cannot both accept the same picture; the hash index of the synset is loaded once per batch and topped up
with candidates other batches created since.

Imports into *different* synsets run side by side, yet may hold the same bytes: one Image row and one set of
files. Whatever reads, creates or deletes an Image row or its files holds its content's lock
(:func:`_contents_locked`) until its transaction ends — a chunk for every file it has in hand, taken before it
reads the rows. So a deletion waits for a chunk that loaded the row (and then sees its new candidate), a chunk
waits for a deletion (and then creates the row and files again), and files are deleted only while no Image row
names them.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice
from pathlib import PurePosixPath

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, ProtectedError, Q
from django.utils import timezone

from annotation import fetch, imaging
from annotation.errors import AnnotationError, StorageFull, disk_full, paths_cut
from annotation.imaging import Processed, Rejected
from annotation.models import Campaign, CampaignSynset, Candidate, Image, ImportBatch, ImportItem
from annotation.selectors.images import candidate_hashes
from annotation.services import rollups
from annotation.services.campaigns import synsets_claim_check, synsets_claim_hold
from annotation.sources import ArchiveLimits, Incoming
from taxonomy.models import Synset

log = logging.getLogger(__name__)

CHUNK_SIZE = 100  # files per transaction
TASK_ITEMS = 200  # pending API items one Celery task handles before it re-enqueues itself
FETCH_THREADS = 4  # concurrent URL downloads
HEARTBEAT_SECONDS = 30  # a job holding an API batch touches its heartbeat at least this often while it reads
Outcome = ImportItem.Outcome


def limits() -> imaging.Limits:
    return imaging.Limits(
        max_bytes=settings.IMAGE_MAX_BYTES,
        max_pixels=settings.IMAGE_MAX_PIXELS,
        min_side=settings.IMAGE_MIN_SIDE,
        max_aspect=settings.IMAGE_MAX_ASPECT,
        thumbnail_side=settings.IMAGE_THUMBNAIL_SIDE,
        medium_side=settings.IMAGE_MEDIUM_SIDE,
    )


def archive_limits() -> ArchiveLimits:
    return ArchiveLimits(
        max_bytes=settings.IMAGE_MAX_BYTES,
        max_members=settings.IMAGE_ARCHIVE_MAX_MEMBERS,
        max_total_bytes=settings.IMAGE_ARCHIVE_MAX_BYTES,
    )


def fetch_policy() -> fetch.FetchPolicy:
    return fetch.FetchPolicy(
        max_bytes=settings.IMAGE_MAX_BYTES,
        connect_timeout=settings.IMAGE_FETCH_CONNECT_TIMEOUT,
        timeout=settings.IMAGE_FETCH_TIMEOUT,
        max_redirects=settings.IMAGE_FETCH_MAX_REDIRECTS,
        allow_loopback=settings.IMAGE_FETCH_ALLOW_LOOPBACK,
    )


def storage_names(sha256: str, ext: str) -> tuple[str, str, str]:
    """Content-addressed names of the original, the thumbnail and the medium version."""
    stem = f"{sha256[:2]}/{sha256[2:4]}/{sha256}"
    return f"images/{stem}.{ext}", f"thumbs/{stem}.jpg", f"medium/{stem}.jpg"


# ------------------------------------------------------------------------------------------------ batches
def import_batch_create(
    *, synset: Synset, source: str, query_term: str = "", origin: str = "", created_by: User | None = None
) -> ImportBatch:
    return ImportBatch.objects.create(
        synset=synset, source=source, query_term=query_term[:200], origin=origin[:500], created_by=created_by
    )


def import_batch_finish(*, batch: ImportBatch) -> ImportBatch:
    # error="": a foreground batch marked abandoned while one chunk took very long, and then finished
    ImportBatch.objects.filter(id=batch.id).update(
        status=ImportBatch.Status.DONE, finished=timezone.now(), claim="", error=""
    )
    batch.refresh_from_db()
    rollups.candidates_changed(synset_id=batch.synset_id)
    return batch


def import_batch_fail(*, batch: ImportBatch, error: str) -> None:
    ImportBatch.objects.filter(id=batch.id).update(
        status=ImportBatch.Status.FAILED, error=error[:2000], finished=timezone.now(), claim=""
    )


# ------------------------------------------------------------------------------------------------ ingest
def images_ingest(
    *,
    batch: ImportBatch,
    incoming: Iterable[Incoming],
    workers: int = 1,
    progress: Callable[[int], None] = lambda n: None,
    claim: str = "",
) -> ImportBatch:
    """Process and store ``incoming`` files as candidates of ``batch.synset``; returns the batch with its
    counts. ``workers`` > 1 decodes in that many processes (not inside a daemonic Celery worker). With a
    ``claim`` (an API batch's job, see import_batch_claim) every chunk commits only while the batch still
    holds that claim, and raises ClaimLost otherwise."""
    ImportBatch.objects.filter(id=batch.id, status=ImportBatch.Status.PENDING).update(status=ImportBatch.Status.RUNNING)
    state = _SynsetState(batch.synset_id)
    with _processor(workers, limits()) as run:
        results = run(incoming)
        while chunk := list(islice(results, CHUNK_SIZE)):
            _commit_chunk(batch, chunk, state, claim)
            progress(len(chunk))
    batch.refresh_from_db()
    return batch


def import_foreground(
    *,
    batch: ImportBatch,
    incoming: Iterable[Incoming],
    workers: int = 1,
    progress: Callable[[int], None] = lambda n: None,
) -> ImportBatch:
    """Ingest and finish a batch in this process (``manage.py import_images``, the demo's images). If it
    stops on an exception — Ctrl-C included — the batch is marked failed with a sentence saying how far it
    got, instead of staying "running" for ever, and the exception goes on. (A process killed outright is
    caught later by import_batches_abandoned.)"""
    try:
        batch = images_ingest(batch=batch, incoming=incoming, workers=workers, progress=progress)
    except BaseException as error:
        reason = "interrupted" if isinstance(error, KeyboardInterrupt) else f"stopped by an error ({error!r})"
        try:
            stored = ImportBatch.objects.get(id=batch.id).total
            if disk_full(error):  # the failed chunk's files were removed (_commit_chunk)
                sentence = (
                    f"The import stopped after {stored} files because the server's storage (MEDIA_ROOT) is full; "
                    "what was stored is kept, and nothing half-written stays. Free space, then run the same import "
                    "again to finish it (those files will be reported as duplicates)."
                )
            else:
                sentence = (
                    f"The import was {reason} after {stored} files. What was stored is kept; run the same import "
                    "again to finish it (those files will be reported as duplicates)."
                )
            import_batch_fail(batch=batch, error=sentence)
        except Exception:  # the database itself went away: the periodic sweep marks the batch later
            log.exception("could not mark import batch %s failed", batch.id)
        raise
    return import_batch_finish(batch=batch)


@dataclass
class _SynsetState:
    """The synset's perceptual hashes (candidate id as key) and the names of files accepted in this run."""

    synset_id: int
    index: imaging.HashIndex = field(init=False)
    last_id: int = 0
    names: dict[int, str] = field(default_factory=dict)
    colours: dict[int, tuple[float, float, float] | None] = field(default_factory=dict)  # from thumbnails, on demand

    def __post_init__(self):
        self.index = imaging.HashIndex()
        self.refresh()

    def refresh(self) -> None:
        ids, hashes = candidate_hashes(synset_id=self.synset_id, after_id=self.last_id)
        for key, phash in zip(ids.tolist(), hashes.tolist(), strict=True):
            self.index.add(phash, key)
        if len(ids):
            self.last_id = int(ids.max())

    def label(self, candidate_id: int) -> str:
        return self.names.get(candidate_id) or f"candidate {candidate_id}"

    def near_duplicate(self, result: imaging.Processed) -> tuple[Candidate, int] | None:
        """The nearest candidate of the synset that looks like ``result`` (close perceptual hash *and* mean
        colour), with the hash distance; None when there is none. Matches on the hash alone are rare, so
        reading a matched candidate's thumbnail for its colour costs little."""
        threshold = settings.IMAGE_NEAR_DUPLICATE_DISTANCE
        for key, distance in self.index.within(result.phash, threshold):
            near = Candidate.objects.select_related("image").get(id=key)
            if key not in self.colours:
                try:
                    with near.image.thumbnail.open("rb") as handle:
                        self.colours[key] = imaging.file_colour(handle)
                except OSError:  # an unreadable thumbnail: the hash alone decides, as before colours counted
                    self.colours[key] = None
            known = self.colours[key]
            if known is None or imaging.colour_distance(known, result.colour) <= settings.IMAGE_NEAR_DUPLICATE_COLOUR:
                return near, distance
        return None


# A batch is processed in this process until it has run this long; only a longer one starts the pool. Spawning
# the pool's processes costs about a second (each imports numpy and Pillow), more than a small batch's whole
# decoding: the demo's 80 small images took 10 s in ten two-process pools and 0.5 s here.
POOL_AFTER_SECONDS = 2.0


@contextmanager
def _processor(workers: int, lim: imaging.Limits):
    """A function from Incoming items to (Incoming, Processed | Rejected) pairs, in order. With ``workers`` > 1
    the first POOL_AFTER_SECONDS of the batch run here and the rest in a pool of that many processes."""
    if workers <= 1:
        yield lambda incoming: ((inc, _outcome(inc, lim)) for inc in incoming)
        return
    with contextlib.ExitStack() as stack:

        def run(incoming: Iterable[Incoming]) -> Iterator[tuple[Incoming, Processed | Rejected]]:
            remaining = iter(incoming)
            started = time.monotonic()
            for inc in remaining:
                yield inc, _outcome(inc, lim)
                if time.monotonic() - started >= POOL_AFTER_SECONDS:
                    break
            else:
                return
            # spawn: the children import only annotation.imaging, never a copy of our database connection. Like
            # any spawn pool it re-imports the main script, so scripts need an ``if __name__ == "__main__":`` guard.
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")))
            yield from _windowed(pool, remaining, lim, window=16 * workers)

        yield run


def _outcome(inc: Incoming, lim: imaging.Limits) -> Processed | Rejected:
    return inc.rejected if inc.data is None else imaging.process_safely(inc.data, lim)


def _windowed(pool: ProcessPoolExecutor, incoming: Iterable[Incoming], lim, window: int) -> Iterator:
    """Like pool.map, but with at most ``window`` files in flight, so memory stays flat."""
    queue: deque[tuple[Incoming, Future | Rejected | None]] = deque()
    for inc in incoming:
        queue.append((inc, inc.rejected if inc.data is None else pool.submit(imaging.process_safely, inc.data, lim)))
        while len(queue) >= window:
            yield _ready(*queue.popleft())
    while queue:
        yield _ready(*queue.popleft())


def _ready(inc: Incoming, pending) -> tuple[Incoming, Processed | Rejected]:
    return inc, pending.result() if isinstance(pending, Future) else pending


@dataclass
class _Written:
    """Files this chunk wrote, deleted again if its transaction fails."""

    names: list[str] = field(default_factory=list)

    def save(self, name: str, content: bytes) -> None:
        if default_storage.exists(name):
            if default_storage.size(name) == len(content):  # content-addressed: same name and length, same bytes
                return
            # Cut short: a process killed while writing it (its chunk rolled back, the file stayed). Kept, it would be
            # served as this content for ever; written again whole, under the content's lock this chunk holds.
            default_storage.delete(name)
        # Listed first: a write that fails midway (a full disk) leaves part of the file, which a later import would
        # find under its content-addressed name and keep as the image.
        self.names.append(name)
        saved = default_storage.save(name, ContentFile(content))
        if saved != name:  # ``name`` is another writer's
            self.names[-1] = saved
            raise RuntimeError(f"Storage saved {name} as {saved}; content-addressed names must not change.")

    def undo(self) -> None:
        for name in self.names:
            _delete_quietly(name)


def _delete_quietly(name: str) -> None:
    try:
        default_storage.delete(name)
    except Exception:  # a file left over is harmless; a crash here would hide the original error
        log.warning("Could not delete %s from storage", name, exc_info=True)


def _contents_locked(shas: Iterable[str]) -> None:
    """Hold the lock of each of these contents (SHA-256 hex) until the transaction ends. On PostgreSQL a
    transaction-level advisory lock keyed by the hash's first 64 bits (a collision only makes two contents wait on
    each other), taken in key order in one statement, so two chunks never wait on each other in a cycle; a holder
    takes no other content's lock later. SQLite needs none: its IMMEDIATE transactions run one writer at a time."""
    if connection.vendor != "postgresql":
        return
    keys = sorted({int.from_bytes(bytes.fromhex(sha[:16]), "big", signed=True) for sha in shas})
    if keys:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(key) FROM unnest(%s::bigint[]) AS key", [keys])


def _files_delete_unused(names: Iterable[str]) -> None:
    """Delete those of these stored image files that no Image row names, under their contents' locks (the stem of
    a content-addressed name is its SHA-256): an import that found a file on disk and skipped writing it holds the
    lock until its row commits, and is then seen here. Files left over (the database went away) are harmless."""
    names = set(names)
    if not names:
        return
    try:
        with transaction.atomic():
            _contents_locked(PurePosixPath(name).stem for name in names)
            named = Q(file__in=names) | Q(thumbnail__in=names) | Q(medium__in=names)
            rows = Image.objects.filter(named).values_list("file", "thumbnail", "medium")
            used = {name for row in rows for name in row}
            for name in sorted(names - used):
                _delete_quietly(name)
    except Exception:  # called while another error is on its way up: that one must not be hidden
        log.warning("Could not check whether %s are still used; they stay in storage", sorted(names), exc_info=True)


def image_delete_unused(*, image_id: int) -> bool:
    """Delete an Image row, and once that has committed its files, if nothing refers to it: no candidate and no
    dataset version (their PROTECT foreign keys; ``delete()`` checks them all). Under its content's lock, so an
    import that has these bytes in hand — it loaded the row and may be creating a candidate of it — finishes first
    and is seen. Returns whether the row was deleted."""
    with transaction.atomic():
        sha = Image.objects.filter(id=image_id).values_list("sha256", flat=True).first()
        if sha is None:
            return False
        _contents_locked([sha])
        image = Image.objects.filter(id=image_id).first()  # read again under the lock
        if image is None:
            return False
        names = {image.file.name, image.thumbnail.name, image.medium.name}
        try:
            image.delete()
        except ProtectedError:  # raised before anything is deleted
            return False
        transaction.on_commit(lambda: _files_delete_unused(names))
    return True


@dataclass
class _Chunk:
    """One transaction's worth of files: the Images and this synset's Candidates they already have
    (two queries for the whole chunk), and the ImportItems to insert at the end."""

    batch: ImportBatch
    state: _SynsetState
    written: _Written
    images: dict[str, Image] = field(default_factory=dict)
    candidates: dict[int, Candidate] = field(default_factory=dict)
    new_items: list[ImportItem] = field(default_factory=list)

    def load(self, processed: list[Processed]) -> None:
        shas = [p.sha256 for p in processed]
        _contents_locked(shas)  # before reading: a deletion of one of these rows is then over or waits for us
        self.images = {image.sha256: image for image in Image.objects.filter(sha256__in=shas)}
        same_synset = Candidate.objects.filter(synset_id=self.batch.synset_id, image__in=self.images.values())
        self.candidates = {candidate.image_id: candidate for candidate in same_synset}


def _commit_chunk(batch: ImportBatch, chunk: list[tuple[Incoming, Processed | Rejected]], state, claim: str) -> None:
    work = _Chunk(batch, state, _Written())
    try:
        with transaction.atomic():
            # FOR NO KEY UPDATE: imports of the synset still queue here (and behind campaign_create's FOR UPDATE),
            # but rows that only point at the synset (a leased HIT, whose foreign key check at commit takes FOR KEY
            # SHARE on it) do not wait for the chunk. With FOR UPDATE a next-HIT request's commit waited for the
            # chunk, which deadlocked when the chunk then waited for a candidate that request had leased.
            list(Synset.objects.select_for_update(no_key=True).filter(id=batch.synset_id).values_list("id"))
            state.refresh()
            work.load([result for _, result in chunk if isinstance(result, Processed)])
            tally = Counter(_decide(work, inc, result) for inc, result in chunk)
            ImportItem.objects.bulk_create(work.new_items)
            # Checked by row count: a job whose claim was taken over writes nothing (the UPDATE also holds the
            # batch row until commit, so a takeover waits for this chunk and then sees a fresh heartbeat).
            held = ImportBatch.objects.filter(id=batch.id, **({"claim": claim} if claim else {}))
            counted = held.update(
                total=F("total") + len(work.new_items),
                heartbeat=timezone.now(),
                **{outcome: F(outcome) + count for outcome, count in tally.items()},
            )
            if counted != 1:
                raise ClaimLost(f"Import batch {batch.id} was taken over by another job.")
            staged = [_staged_name(batch.id, inc.item_id) for inc, _ in chunk if inc.item_id is not None]
            if staged and batch.source == ImportBatch.Source.UPLOAD:
                transaction.on_commit(lambda: [_delete_quietly(name) for name in staged])
    except BaseException:
        _files_delete_unused(work.written.names)  # another import may have committed a row naming them since
        raise


def _decide(work: _Chunk, inc: Incoming, result: Processed | Rejected) -> str:
    """Decide one file's outcome and write what it needs (files, Image, Candidate, ImportItem)."""
    if isinstance(result, Rejected):
        return _item(work, inc, Outcome.REJECTED, result.code, result.reason, None)
    state = work.state
    existing = work.images.get(result.sha256)
    if existing is not None and (same := work.candidates.get(existing.id)) is not None:
        reason = f"The same file is already a candidate for this synset ({state.label(same.id)})."
        return _item(work, inc, Outcome.DUPLICATE, "duplicate", reason, same)
    threshold = settings.IMAGE_NEAR_DUPLICATE_DISTANCE
    match = state.near_duplicate(result)
    if match is not None:
        near, distance = match
        key = near.id
        what = f"Looks like {state.label(key)} (perceptual-hash distance {distance}, threshold {threshold})"
        if result.pixels <= near.image.pixels:
            reason = f"{what}; the larger copy is kept."
            return _item(work, inc, Outcome.NEAR_DUPLICATE, "near_duplicate", reason, near)
        # Its state read again under its row lock: a next-HIT request may have leased it since it was read (the
        # swap then put another picture, and deleted the old files, under a worker's HIT). The scheduler skips
        # the row while this chunk holds it.
        near.state = Candidate.objects.select_for_update().values_list("state", flat=True).get(id=near.id)
        if near.state != Candidate.State.NEW:
            reason = f"{what}; this copy is larger, but that candidate is already being labelled, so it stays."
            return _item(work, inc, Outcome.NEAR_DUPLICATE, "near_duplicate", reason, near)
        image = existing or _image_create(result, inc.data, work)
        work.candidates.pop(near.image_id, None)  # absent when the match came from an earlier chunk
        _replace_image(near, image, work.batch)
        work.candidates[image.id] = near
        state.index.replace(key, result.phash)
        state.colours[key] = result.colour
        reason = f"Replaced the smaller near-duplicate {state.label(key)} (perceptual-hash distance {distance})."
        state.names[key] = inc.name
        return _item(work, inc, Outcome.ACCEPTED, "replaced", reason, near)
    image = existing or _image_create(result, inc.data, work)
    candidate = Candidate.objects.create(image=image, synset_id=work.batch.synset_id, batch=work.batch)
    work.candidates[image.id] = candidate
    state.index.add(result.phash, candidate.id)
    state.colours[candidate.id] = result.colour
    state.names[candidate.id] = inc.name
    return _item(work, inc, Outcome.ACCEPTED, "", "", candidate)


def _item(work: _Chunk, inc: Incoming, outcome: str, code: str, reason: str, candidate: Candidate | None) -> str:
    fields = {"outcome": outcome, "code": code, "reason": reason, "candidate": candidate}
    if inc.item_id is not None:
        ImportItem.objects.filter(id=inc.item_id).update(**fields)
    else:
        work.new_items.append(ImportItem(batch=work.batch, name=inc.name, **fields))
    return outcome


def _image_create(result: Processed, data: bytes, work: _Chunk) -> Image:
    written = work.written
    original, thumbnail, medium = storage_names(result.sha256, result.ext)
    written.save(original, data)
    written.save(thumbnail, result.thumbnail)
    if result.medium is not None:
        written.save(medium, result.medium)
    fields = {
        "file": original, "thumbnail": thumbnail, "medium": medium if result.medium is not None else original,
        "format": result.format, "width": result.width, "height": result.height, "byte_size": result.byte_size,
        "phash": result.phash,
    }  # fmt: skip
    # An upsert rather than a savepoint around INSERT: one statement, and if another import stored the same
    # bytes a moment ago we get that row's id (same bytes, so the same fields).
    (image,) = Image.objects.bulk_create(
        [Image(sha256=result.sha256, **fields)], update_conflicts=True, unique_fields=["sha256"],
        update_fields=["sha256"],
    )  # fmt: skip
    work.images[image.sha256] = image
    return image


def _replace_image(candidate: Candidate, image: Image, batch: ImportBatch) -> None:
    """Point the candidate at the larger image; the old one is deleted after commit if nothing uses it then.
    Not here: the old image's content is not among this chunk's locks, and an import into another synset may
    have loaded its row and be creating a candidate of it (it then failed on the foreign key at commit, or
    committed a row whose files were deleted). After commit this transaction holds no lock the wait could close a
    cycle with; robust: the chunk has committed, a failed clean-up leaves an unused image and is logged."""
    old_id = candidate.image_id
    candidate.image = image
    candidate.batch = batch
    candidate.save(update_fields=["image", "batch"])
    transaction.on_commit(lambda: image_delete_unused(image_id=old_id), robust=True)


# ------------------------------------------------------------------------------------------------ API imports
def _staged_name(batch_id: int, item_id: int) -> str:
    return f"imports/{batch_id}/{item_id}"


def import_permitted(*, user: User, synset: Synset, campaign: Campaign | None = None) -> None:
    """Whether ``user`` may bring images for ``synset`` (raises AnnotationError or Forbidden with a sentence).
    A candidate is one per (image, synset), shared by every campaign over the synset, so images imported for a
    synset go into the queue of every campaign over it: a researcher may import for a synset of their own
    campaigns, or one in no other researcher's unfinished campaign (gathering before a campaign); an admin, for
    any (campaigns.synsets_claim_check). With ``campaign`` (the campaign dashboard's form), the synset must be one
    of that campaign's (QA: the form took any wnid, and the image went into another campaign's HITs)."""
    if campaign is not None and not CampaignSynset.objects.filter(campaign=campaign, synset=synset).exists():
        raise AnnotationError(f"{synset.wnid} is not a synset of campaign “{campaign.name}”.")
    synsets_claim_check(user=user, synset_ids=[synset.id], doing="add images to it")


@transaction.atomic
def import_upload_submit(*, user: User, synset: Synset, files: list[UploadedFile], query_term: str = "") -> ImportBatch:
    """Stage uploaded files and queue their processing; the batch answers with pending items at once."""
    synsets_claim_hold(user=user, synset_ids=[synset.id], doing="add images to it")
    batch = import_batch_create(
        synset=synset, source=ImportBatch.Source.UPLOAD, query_term=query_term, created_by=user,
        origin=f"{len(files)} uploaded files",
    )  # fmt: skip
    written = _Written()
    try:
        for upload in files:
            item = ImportItem.objects.create(batch=batch, name=(upload.name or "upload")[:500])
            name = _staged_name(batch.id, item.id)
            written.names.append(name)  # first: a write that fails midway leaves part of the file
            written.names[-1] = default_storage.save(name, upload)
    except BaseException as error:
        written.undo()
        _staging_folder_rmdir(batch.id)
        if disk_full(error):  # the transaction rolls back the batch: nothing of the upload stays
            raise StorageFull(
                "The server's storage is full, so this upload was not kept (nothing of it was saved); send it "
                "again once an admin has freed space."
            ) from None
        raise
    ImportBatch.objects.filter(id=batch.id).update(total=len(files))
    _enqueue(batch.id)
    batch.refresh_from_db()
    return batch


@transaction.atomic
def import_urls_submit(*, user: User, synset: Synset, urls: list[str], query_term: str = "") -> ImportBatch:
    synsets_claim_hold(user=user, synset_ids=[synset.id], doing="add images to it")
    batch = import_batch_create(
        synset=synset, source=ImportBatch.Source.URL, query_term=query_term, created_by=user,
        origin=f"{len(urls)} URLs",
    )  # fmt: skip
    ImportItem.objects.bulk_create([ImportItem(batch=batch, name=url) for url in urls], batch_size=1000)
    ImportBatch.objects.filter(id=batch.id).update(total=len(urls))
    _enqueue(batch.id)
    batch.refresh_from_db()
    return batch


def _enqueue(batch_id: int) -> None:
    from annotation.image_tasks import image_import_run  # the task module imports this one

    # QueuedAfterCommit: with the broker down the batch is still created (202); the resume job queues it later.
    transaction.on_commit(lambda: image_import_run.delay(batch_id))


# ------------------------------------------------------------------------------------------------ API import jobs
# A job processing an API batch claims it with a conditional UPDATE (a random token, checked by row count), so two
# jobs never process the same pending items at once; it touches ``heartbeat`` every chunk and every
# HEARTBEAT_SECONDS while it downloads or reads, and releases the claim after its step. A job that dies (worker
# SIGKILLed, broker restarted with the message queued, broker down when the job was queued) leaves the batch
# claimed with an old heartbeat, or unclaimed and untouched: import_batches_stalled finds it, the resume job
# queues it again. Re-running is safe: only pending items are read, and a chunk marks its items in the
# transaction that writes their candidates, so a crash loses at most the chunk in hand and nothing is imported
# twice.
API_SOURCES = (ImportBatch.Source.URL, ImportBatch.Source.UPLOAD)
OPEN_STATUSES = (ImportBatch.Status.PENDING, ImportBatch.Status.RUNNING)


class ClaimLost(Exception):
    """Another job took the batch over: this one was silent longer than IMAGE_IMPORT_STALE_SECONDS."""


def _stale_before():
    return timezone.now() - timedelta(seconds=settings.IMAGE_IMPORT_STALE_SECONDS)


def import_batch_claim(*, batch_id: int) -> str | None:
    """Take an open API batch for one step: unclaimed, or claimed by a job whose heartbeat is older than
    IMAGE_IMPORT_STALE_SECONDS (it died). Returns the claim token; None when the batch is finished or
    another job holds it."""
    token = uuid.uuid4().hex
    free = Q(claim="") | Q(heartbeat__lt=_stale_before())
    batch = ImportBatch.objects.filter(free, id=batch_id, status__in=OPEN_STATUSES, source__in=API_SOURCES)
    claimed = batch.update(status=ImportBatch.Status.RUNNING, claim=token, heartbeat=timezone.now())
    return token if claimed == 1 else None


def import_batch_release(*, batch_id: int, claim: str) -> None:
    ImportBatch.objects.filter(id=batch_id, claim=claim).update(claim="", heartbeat=timezone.now())


def _heartbeat(batch_id: int, claim: str) -> None:
    if not ImportBatch.objects.filter(id=batch_id, claim=claim).update(heartbeat=timezone.now()):
        raise ClaimLost(f"Import batch {batch_id} was taken over by another job.")


def import_batches_stalled() -> list[int]:
    """API batches whose job was lost: claimed with a heartbeat older than IMAGE_IMPORT_STALE_SECONDS, or
    unclaimed and untouched for IMAGE_IMPORT_PENDING_GRACE_SECONDS (the job queued at creation or by the
    previous step never ran). The resume job (annotation/image_tasks.py) queues them again."""
    grace = timezone.now() - timedelta(seconds=settings.IMAGE_IMPORT_PENDING_GRACE_SECONDS)
    unclaimed = Q(claim="") & (Q(heartbeat__lt=grace) | Q(heartbeat__isnull=True, created__lt=grace))
    dead = ~Q(claim="") & Q(heartbeat__lt=_stale_before())
    batches = ImportBatch.objects.filter(unclaimed | dead, status__in=OPEN_STATUSES, source__in=API_SOURCES)
    return list(batches.order_by("id").values_list("id", flat=True))


def import_batches_abandoned() -> list[int]:
    """Mark failed the foreground imports (``manage.py import_images``, the demo's images) whose process
    ended without finishing — killed, or the machine went down: open, and no chunk committed for
    IMAGE_IMPORT_STALE_SECONDS (each chunk touches ``heartbeat``). Nothing can resume them (their files
    were on the command's side), but running the same import again finishes the job: what was stored is
    kept and reported as duplicates. Called by the periodic resume job; returns the batches marked."""
    stale = _stale_before()
    silent = Q(heartbeat__lt=stale) | Q(heartbeat__isnull=True, created__lt=stale)
    batches = ImportBatch.objects.filter(silent, status__in=OPEN_STATUSES).exclude(source__in=API_SOURCES)
    ids = list(batches.order_by("id").values_list("id", flat=True))
    if ids:
        ImportBatch.objects.filter(silent, id__in=ids, status__in=OPEN_STATUSES).update(
            status=ImportBatch.Status.FAILED,
            finished=timezone.now(),
            error="The import stopped midway: its process ended before it finished. The images stored before "
            "that are kept; run the same import again to finish it (they will be reported as duplicates).",
        )
    return ids


def import_batch_step(*, batch_id: int, limit: int | None = None) -> bool:
    """Claim an API batch and process up to ``limit`` (TASK_ITEMS) of its pending items; True while more are
    pending (the caller queues the next step). False when the batch is finished, failed, or held by another
    job. Idempotent: only pending items are read, and each chunk marks its items in the transaction that
    writes them, under the claim."""
    claim = import_batch_claim(batch_id=batch_id)
    if claim is None:
        return False
    batch = ImportBatch.objects.select_related("synset").get(id=batch_id)
    items = batch.items.filter(outcome=Outcome.PENDING).order_by("id")
    pending = list(items.values_list("id", "name")[: limit or TASK_ITEMS])
    if pending:
        incoming = _beating(_pending_incoming(batch, pending), batch_id, claim)
        try:
            images_ingest(batch=batch, incoming=incoming, claim=claim)
        except ClaimLost:
            log.warning("Import batch %s was taken over by another job; this one stops.", batch_id)
            return False
        except (OperationalError, InterfaceError):
            raise  # the database, not the batch: its claim goes stale and the resume job retries it
        except Exception as error:
            log.exception("Import batch %s failed", batch_id)
            import_batch_fail(batch=batch, error=_step_failure(batch, error))
            _discard_staged(batch)
            transaction.on_commit(lambda: _staging_folder_remove(batch))
            return False
    if batch.items.filter(outcome=Outcome.PENDING).exists():
        import_batch_release(batch_id=batch_id, claim=claim)
        return True
    import_batch_finish(batch=batch)
    transaction.on_commit(lambda: _staging_folder_remove(batch))  # after the staged files' own deletes
    return False


def _step_failure(batch: ImportBatch, error: Exception) -> str:
    """The failed API batch's ``error``: on a full disk, what became of its files and what to do (the chunk that
    met it removed its files; the staged uploads not yet stored are discarded by the caller)."""
    if not disk_full(error):
        return f"The import stopped: {type(error).__name__}: {paths_cut(str(error))}"
    batch.refresh_from_db()
    stored = f"The server's storage is full, so the import stopped after {batch.processed} of {batch.total} files"
    rest = (
        "The uploaded files not yet stored were discarded: upload them again"
        if batch.source == ImportBatch.Source.UPLOAD
        else "The URLs not yet fetched were not imported: submit them again"
    )
    return (
        f"{stored}; those are kept, and nothing half-written stays. {rest} once an admin has freed space (those "
        "already stored will be reported as duplicates)."
    )


def _beating(incoming: Iterable[Incoming], batch_id: int, claim: str) -> Iterator[Incoming]:
    """``incoming`` as it is, touching the batch's heartbeat at least every HEARTBEAT_SECONDS (downloads of a
    chunk can take minutes); raises ClaimLost once another job has taken the batch over."""
    last = time.monotonic()
    for inc in incoming:
        if time.monotonic() - last >= HEARTBEAT_SECONDS:
            _heartbeat(batch_id, claim)
            last = time.monotonic()
        yield inc


def _pending_incoming(batch: ImportBatch, pending: list[tuple[int, str]]) -> Iterator[Incoming]:
    if batch.source == ImportBatch.Source.URL:
        yield from fetch_all(((name, item_id) for item_id, name in pending), fetch_policy())
        return
    for item_id, name in pending:
        try:
            with default_storage.open(_staged_name(batch.id, item_id)) as handle:
                data = handle.read(settings.IMAGE_MAX_BYTES + 1)
        except FileNotFoundError:
            yield Incoming(name, rejected=Rejected("missing", "The uploaded file was lost."), item_id=item_id)
            continue
        if len(data) > settings.IMAGE_MAX_BYTES:
            rejected = Rejected("too_large", f"The file has more than {settings.IMAGE_MAX_BYTES:,} bytes.")
            yield Incoming(name, rejected=rejected, item_id=item_id)
        else:
            yield Incoming(name, data=data, item_id=item_id)


def _discard_staged(batch: ImportBatch) -> None:
    if batch.source == ImportBatch.Source.UPLOAD:
        for item_id in batch.items.values_list("id", flat=True):
            _delete_quietly(_staged_name(batch.id, item_id))


def _staging_folder_remove(batch: ImportBatch) -> None:
    """The upload batch's staging folder, once its files are gone (QA: an empty imports/<batch>/ stayed behind
    for every upload)."""
    if batch.source == ImportBatch.Source.UPLOAD:
        _staging_folder_rmdir(batch.id)


def _staging_folder_rmdir(batch_id: int) -> None:
    # A storage without folders, a file still there, or no folder at all: nothing to do.
    with contextlib.suppress(NotImplementedError, OSError):
        os.rmdir(default_storage.path(f"imports/{batch_id}"))


# Files of an upload are saved before its batch row commits: a folder with no batch row is left this long.
STAGING_GRACE = timedelta(hours=1)


def import_staging_leftovers_remove(*, grace: timedelta = STAGING_GRACE) -> list[int]:
    """Delete staged uploads (``imports/<batch>/<item>``) that nothing will read: those of a finished or failed
    batch (its job died between a chunk's commit and the chunk's on-commit deletes, or a delete failed), and
    those older than ``grace`` whose batch row does not exist (the request or process died before the upload
    committed; the batch was deleted). An open batch's files are its only copy of the images and are kept.
    Called by the periodic resume job; returns the batch ids whose folders it emptied."""
    try:
        folders, _ = default_storage.listdir("imports")
    except (FileNotFoundError, NotImplementedError):
        return []
    ids = {int(name) for name in folders if name.isdigit()}
    statuses = dict(ImportBatch.objects.filter(id__in=ids).values_list("id", "status"))
    cutoff = timezone.now() - grace
    cleaned = []
    for batch_id in sorted(ids):
        if statuses.get(batch_id) in OPEN_STATUSES:
            continue
        folder = f"imports/{batch_id}"
        try:
            _, names = default_storage.listdir(folder)
        except FileNotFoundError:  # its job removed it since
            continue
        young = [
            n for n in names if batch_id not in statuses and default_storage.get_modified_time(f"{folder}/{n}") > cutoff
        ]
        for name in set(names) - set(young):
            _delete_quietly(f"{folder}/{name}")
        if not young:
            _staging_folder_rmdir(batch_id)
            cleaned.append(batch_id)
    if cleaned:
        log.warning("Deleted staged uploads nothing will read, of import batches %s", cleaned)
    return cleaned


def fetch_all(urls: Iterable[tuple[str, int | None]], policy: fetch.FetchPolicy) -> Iterator[Incoming]:
    """Download URLs ``FETCH_THREADS`` at a time, yielding in the given order."""

    def one(url: str, item_id: int | None) -> Incoming:
        try:
            return Incoming(url, data=fetch.fetch(url, policy), item_id=item_id)
        except Rejected as rejected:
            return Incoming(url, rejected=rejected, item_id=item_id)
        except Exception as error:  # whatever a hostile server makes the HTTP stack raise
            rejected = Rejected("fetch_failed", f"Could not fetch the URL ({type(error).__name__}).")
            return Incoming(url, rejected=rejected, item_id=item_id)

    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        queue: deque[Future] = deque()
        for url, item_id in urls:
            queue.append(pool.submit(one, url, item_id))
            if len(queue) >= 4 * FETCH_THREADS:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()

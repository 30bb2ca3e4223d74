"""Reads of candidate images: URLs for display, import batches and their items, candidates of a synset,
and the perceptual hashes of a synset for near-duplicate lookups."""

import numpy as np
from django.core.files.storage import default_storage
from django.db.models import QuerySet

from annotation.models import Candidate, Image, ImportBatch, ImportItem
from workers.roles import Role
from workers.services import user_has_role


def image_urls(image: Image, request=None) -> dict[str, str]:
    """Thumbnail, medium and original URLs. Local storage serves them from /media/ with year-long cache
    headers (annotation.views.media_file); a bucket serves them itself (signed if S3_QUERYSTRING_AUTH)."""
    urls = {
        "thumbnail": default_storage.url(image.thumbnail.name),
        "medium": default_storage.url(image.medium.name),
        "original": default_storage.url(image.file.name),
    }
    if request is not None:
        urls = {key: request.build_absolute_uri(url) for key, url in urls.items()}
    return urls


def candidate_hashes(*, synset_id: int, after_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(candidate ids, signed 64-bit phashes) of a synset's candidates with id > after_id, by id."""
    rows = (
        Candidate.objects.filter(synset_id=synset_id, id__gt=after_id).order_by("id").values_list("id", "image__phash")
    )
    data = np.array(list(rows), dtype=np.int64).reshape(-1, 2)
    return data[:, 0], data[:, 1]


def import_batch_get(*, batch_id: int, user=None) -> ImportBatch:
    """The batch; with ``user``, only one they started unless they are an admin (someone else's import does
    not exist for them, like someone else's campaign)."""
    batches = ImportBatch.objects.select_related("synset", "created_by")
    if user is not None and not user_has_role(user, Role.ADMIN):
        batches = batches.filter(created_by=user)
    return batches.get(id=batch_id)


def import_items(*, batch: ImportBatch, outcome: str | None = None) -> QuerySet[ImportItem]:
    items = ImportItem.objects.filter(batch=batch).order_by("id")
    return items.filter(outcome=outcome) if outcome else items


def synset_candidates(*, synset_id: int, state: str | None = None) -> QuerySet[Candidate]:
    candidates = Candidate.objects.filter(synset_id=synset_id).select_related("image").order_by("id")
    return candidates.filter(state=state) if state else candidates

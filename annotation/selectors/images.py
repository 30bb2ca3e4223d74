"""Reads of candidate images: URLs for display, import batches and their items, candidates of a synset,
and the perceptual hashes of a synset for near-duplicate lookups."""

import re

import numpy as np
from django.core.files.storage import FileSystemStorage, default_storage
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


# A name the local store's url() returns unchanged after its base URL: no character that needs quoting, and no
# empty, "." or ".." segment for urljoin to resolve (every segment starts with a letter, digit, "_" or "-").
_PLAIN_NAME = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def media_urls(names: list[str]) -> list[str]:
    """``default_storage.url`` of each name. For the local store and the names Synsight writes (content hashes
    and folders) that is the base URL followed by the name: its urljoin and quoting were a fifth of a next-HIT's
    Python for 48 URLs (benchmarks/hit_cpu.py --profile requests). Anything else goes through the storage."""
    storage = default_storage
    if not isinstance(storage, FileSystemStorage) or not (storage.base_url or "").endswith("/"):
        return [storage.url(name) for name in names]
    base, plain = storage.base_url, _PLAIN_NAME.fullmatch
    return [base + name if plain(name) else storage.url(name) for name in names]


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

"""Imports run beside the scheduler: a candidate's image is replaced by a larger near-duplicate only while no
worker has it (state ``new``); once leased, its image stays (annotation/services/images.py)."""

from hashlib import sha256

import pytest
from django.db import connection

from annotation.models import Candidate, HitItem, Image, ImportBatch
from annotation.services.campaigns import campaign_create, campaign_set_state
from annotation.services.hits import hit_next
from annotation.services.images import import_batch_create, import_foreground
from annotation.sources import Incoming
from taxonomy.models import Synset
from tests.annotation.conftest import decode, encode
from tests.annotation.hits.conftest import SHAPES, qualify
from tests.concurrency import while_held_open
from tests.wordnet_snapshot import plane_figures_import

CIRCLE, TRIANGLE = SHAPES[:2]


def _import(synset: Synset, name: str, data: bytes) -> ImportBatch:
    batch = import_batch_create(synset=synset, source=ImportBatch.Source.FOLDER)
    return import_foreground(batch=batch, incoming=[Incoming(name, data=data)])


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is proven on PostgreSQL (CI)")
def test_a_candidate_leased_while_an_import_brings_a_larger_copy_keeps_the_image_its_worker_sees(
    media, shapes, researcher, worker
):
    """The import read the candidate as ``new`` while a next-HIT request was leasing it, then swapped its image
    (and deleted the old files) under the worker's HIT: the votes went to a picture the worker never saw."""
    plane_figures_import()
    synset = Synset.objects.get(id=int(CIRCLE[1:]))
    original = shapes[1]
    half = encode(decode(original.jpeg).resize((original.width // 2, original.height // 2)))
    _import(synset, "half.jpg", half)
    candidate = Candidate.objects.get()
    shown = candidate.image.file.name
    campaign = campaign_create(owner=researcher, name="circles", wnids=[CIRCLE], gold_rate=0.0)
    campaign = campaign_set_state(campaign=campaign, state="running")
    qualify(worker, campaign)
    hit, batch_id = while_held_open(  # the next-HIT request, its lease not committed yet when the import looks
        lambda: list(hit_next(worker=worker, campaign=campaign).items.values_list("candidate_id", flat=True)),
        lambda: _import(synset, "original.jpg", original.jpeg).id,
    )

    assert hit == [candidate.id], (hit, batch_id)
    item = ImportBatch.objects.get(id=batch_id).items.get()
    assert (item.outcome, item.code, item.candidate_id) == ("near_duplicate", "near_duplicate", candidate.id)
    assert item.reason.endswith("this copy is larger, but that candidate is already being labelled, so it stays.")
    candidate.refresh_from_db()
    assert (candidate.state, candidate.image.file.name) == ("voting", shown)
    assert (media / shown).exists()
    assert HitItem.objects.get().candidate_id == candidate.id


def _files_of(image: Image) -> set[str]:
    return {image.file.name, image.thumbnail.name, image.medium.name}


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is proven on PostgreSQL (CI)")
@pytest.mark.parametrize("first", ["other_synset_import", "replacement"])
def test_an_image_replaced_in_one_synset_while_another_imports_its_bytes_keeps_its_row_and_files(media, shapes, first):
    """A larger near-duplicate replaces a candidate's image I in one synset while an import into another synset
    (another synset lock, so not queued behind it) brings I's very bytes. Whichever transaction comes first, both
    imports succeed and the other synset's new candidate has I, row and files. Before, the replacement saw no other
    candidate of I and deleted its row (and, after commit, its files) under the other import, which then failed on
    the foreign key at commit."""
    plane_figures_import()
    circle, triangle = (Synset.objects.get(id=int(wnid[1:])) for wnid in (CIRCLE, TRIANGLE))
    original = shapes[1]
    half = encode(decode(original.jpeg).resize((original.width // 2, original.height // 2)))
    _import(circle, "half.jpg", half)
    small = Candidate.objects.get().image
    replacement = lambda: _import(circle, "original.jpg", original.jpeg)  # noqa: E731
    same_bytes = lambda: _import(triangle, "half.jpg", half)  # noqa: E731

    held, meanwhile = (same_bytes, replacement) if first == "other_synset_import" else (replacement, same_bytes)
    outcomes = while_held_open(held, meanwhile)

    assert [type(outcome) for outcome in outcomes] == [ImportBatch, ImportBatch], outcomes
    replaced = ImportBatch.objects.get(synset=circle, items__name="original.jpg")
    assert [(i.outcome, i.code) for i in replaced.items.all()] == [("accepted", "replaced")]
    assert Candidate.objects.get(synset=circle).image.sha256 == sha256(original.jpeg).hexdigest()
    other = Candidate.objects.get(synset=triangle)
    assert other.image_id == small.id  # the row the replacement would have deleted
    assert all((media / name).read_bytes() for name in _files_of(other.image))
    assert Image.objects.count() == 2

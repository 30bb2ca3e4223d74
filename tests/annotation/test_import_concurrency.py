"""Imports run beside the scheduler: a candidate's image is replaced by a larger near-duplicate only while no
worker has it (state ``new``); once leased, its image stays (annotation/services/images.py)."""

import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction

from annotation.models import Candidate, HitItem, ImportBatch
from annotation.services.campaigns import campaign_create, campaign_set_state
from annotation.services.hits import hit_next
from annotation.services.images import import_batch_create, import_foreground
from annotation.sources import Incoming
from taxonomy.models import Synset
from tests.annotation.conftest import decode, encode
from tests.annotation.hits.conftest import SHAPES, qualify

CIRCLE = SHAPES[0]


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
    call_command("import_wordnet", "--root", "plane_figure.n.01", "--no-progress", stdout=None)
    synset = Synset.objects.get(id=int(CIRCLE[1:]))
    original = shapes[1]
    half = encode(decode(original.jpeg).resize((original.width // 2, original.height // 2)))
    _import(synset, "half.jpg", half)
    candidate = Candidate.objects.get()
    shown = candidate.image.file.name
    campaign = campaign_create(owner=researcher, name="circles", wnids=[CIRCLE], gold_rate=0.0)
    campaign = campaign_set_state(campaign=campaign, state="running")
    qualify(worker, campaign)
    leased, import_started = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def next_hit() -> None:
        try:
            with transaction.atomic():  # the next-HIT request, its lease not committed yet when the import looks
                hit = hit_next(worker=worker, campaign=campaign)
                outcomes["hit"] = list(hit.items.values_list("candidate_id", flat=True))
                leased.set()
                import_started.wait(10)
                time.sleep(0.5)  # long enough for the import to reach the candidate (or its lock) meanwhile
        except BaseException as error:  # reported below
            outcomes["hit"] = error
        finally:
            connections.close_all()

    def larger_copy() -> None:
        try:
            leased.wait(10)
            import_started.set()
            outcomes["import"] = _import(synset, "original.jpg", original.jpeg).id
        except BaseException as error:
            outcomes["import"] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=next_hit), threading.Thread(target=larger_copy)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert outcomes["hit"] == [candidate.id], outcomes
    item = ImportBatch.objects.get(id=outcomes["import"]).items.get()
    assert (item.outcome, item.code, item.candidate_id) == ("near_duplicate", "near_duplicate", candidate.id)
    assert item.reason.endswith("this copy is larger, but that candidate is already being labelled, so it stays.")
    candidate.refresh_from_db()
    assert (candidate.state, candidate.image.file.name) == ("voting", shown)
    assert (media / shown).exists()
    assert HitItem.objects.get().candidate_id == candidate.id

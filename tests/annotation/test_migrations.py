"""Data migrations, run forward from the state before them on the configured database."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("annotation", "0010_campaign_min_worker_accuracy")]
AFTER = [("annotation", "0012_golditem_synset_required")]


@pytest.fixture
def back_to_latest(transactional_db):
    """The test database leaves a migration test at the latest migrations again, for the tests after it."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.usefixtures("back_to_latest")
def test_existing_gold_items_get_their_candidates_synset():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    synsets = [
        old.get_model("taxonomy", "Synset").objects.create(id=offset, name=f"s{offset}.n.01", gloss="", depth=1)
        for offset in (9000001, 9000002)
    ]
    gold_ids = []
    for i, synset in enumerate(synsets * 2):
        image = old.get_model("annotation", "Image").objects.create(
            sha256=f"{i:064x}", format="JPEG", width=1, height=1, byte_size=1, phash=0
        )
        candidate = old.get_model("annotation", "Candidate").objects.create(image=image, synset=synset)
        gold_ids.append(old.get_model("annotation", "GoldItem").objects.create(candidate=candidate, present=True).id)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)

    new = executor.loader.project_state(AFTER).apps
    rows = (
        new.get_model("annotation", "GoldItem")
        .objects.filter(id__in=gold_ids)
        .values_list("synset_id", "candidate__synset_id")
    )
    assert len(rows) == 4
    assert all(synset == candidate_synset for synset, candidate_synset in rows)
    assert {synset for synset, _ in rows} == {9000001, 9000002}

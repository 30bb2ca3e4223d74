"""Data migrations, run forward from the state before them on the configured database."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("annotation", "0010_campaign_min_worker_accuracy")]
AFTER = [("annotation", "0012_golditem_synset_required")]


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


@pytest.mark.usefixtures("back_to_latest")
def test_blocked_qualifications_take_the_reason_their_profile_recorded():
    before, after = (
        [("workers", "0002_workerprofile_sensitivity_workerprofile_specificity")],
        [("workers", "0003_qualification_blocked_reason")],
    )
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    # The other apps stay at their latest migrations: their models as they are now.
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] != "workers"]
    old = executor.loader.project_state(before + others).apps
    User, Campaign = old.get_model("auth", "User"), old.get_model("annotation", "Campaign")
    Qualification, WorkerProfile = old.get_model("workers", "Qualification"), old.get_model("workers", "WorkerProfile")
    owner = User.objects.create(username="owner-m")
    campaign = Campaign.objects.create(name="m", owner=owner)
    spammer, quiet, fine = (User.objects.create(username=name) for name in ("spammer-m", "quiet-m", "fine-m"))
    WorkerProfile.objects.create(user=spammer, blocked=True, blocked_reason="Answers in 0.1 s.")
    WorkerProfile.objects.create(user=fine, blocked_reason="")
    ids = [
        Qualification.objects.create(worker=worker, campaign=campaign, status=status).id
        for worker, status in ((spammer, "blocked"), (quiet, "blocked"), (fine, "qualified"))
    ]

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)

    new = executor.loader.project_state(after).apps.get_model("workers", "Qualification")
    reasons = dict(new.objects.filter(id__in=ids).values_list("worker__username", "blocked_reason"))
    assert reasons == {"spammer-m": "Answers in 0.1 s.", "quiet-m": "", "fine-m": ""}  # no profile: no reason


@pytest.mark.usefixtures("back_to_latest")
def test_existing_audit_verdicts_get_their_candidates_synset():
    before, after = [("annotation", "0022_audit_judgement")], [("annotation", "0024_audit_judgement_synset_required")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] != "annotation"]
    old = executor.loader.project_state(before + others).apps
    owner = old.get_model("auth", "User").objects.create(username="owner-audit")
    campaign = old.get_model("annotation", "Campaign").objects.create(name="audited", owner=owner)
    synsets = [
        old.get_model("taxonomy", "Synset").objects.create(id=offset, name=f"s{offset}.n.01", gloss="", depth=1)
        for offset in (9000011, 9000012)
    ]
    judged = []
    for i, synset in enumerate(synsets * 2):
        image = old.get_model("annotation", "Image").objects.create(
            sha256=f"{i + 100:064x}", format="JPEG", width=1, height=1, byte_size=1, phash=0
        )
        candidate = old.get_model("annotation", "Candidate").objects.create(image=image, synset=synset)
        judgement = old.get_model("annotation", "AuditJudgement").objects.create(
            candidate=candidate, campaign=campaign, correct=i % 2 == 0, posterior=0.99
        )
        judged.append(judgement.id)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)

    new = executor.loader.project_state(after).apps
    rows = new.get_model("annotation", "AuditJudgement").objects.filter(id__in=judged)
    assert sorted(rows.values_list("synset_id", "candidate__synset_id")) == [
        (9000011, 9000011), (9000011, 9000011), (9000012, 9000012), (9000012, 9000012)
    ]  # fmt: skip

"""A simulator run repeats: the same --seed on the same fresh demo campaign (a fresh database, so the same
ids) gives the same report, HIT for HIT — the crowd is seeded by the simulator, and the server's draws (quiz
items, synset order, gold slots and items) by SECRET_KEY, worker, campaign and ordinal
(annotation/services/draws.py). One client at a time and eager Celery, so the server sees the same
sequence of requests; wall-clock figures aside. ``manage.py simulate_crowd --repeatable`` sets the same."""

import uuid

from django.core.management import call_command

from annotation import demo_images as demo
from annotation.services import demo as demo_service
from annotation.services import hits

SYNSETS = [demo.BY_LABEL[label].wnid for label in ("square", "circle", "star")]
WALL_CLOCK = ("wall_seconds", "throughput")


def _run(make_demo_campaign, live_server) -> dict:
    campaign = make_demo_campaign(name="repeat shapes", wnids=SYNSETS, per_synset=15)
    options = demo_service.SimulationOptions(workers=16, seed=7, concurrency=1, prefix="rep")
    report = demo_service.simulate(campaign=campaign, options=options, base_url=live_server.url)
    return {key: value for key, value in report.items() if key not in WALL_CLOCK}


def _fresh_database(settings) -> None:
    """Empty tables with their id sequences restarted, and a cache namespace of its own (the consensus
    model's pooled figures and refit locks are cached by campaign id)."""
    call_command("flush", interactive=False, verbosity=0)
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}


def test_the_same_seed_on_a_fresh_demo_campaign_gives_the_same_report(
    make_demo_campaign, live_server, settings, monkeypatch
):
    # As simulate_crowd --repeatable: the scheduler's synset counts are read on every lease (its 2 s
    # per-process cache follows the wall clock: with it, two runs differed, 20 vs 18 HITs). The monkeypatch
    # puts the cache back afterwards; the celery_eager fixture the eager setting.
    monkeypatch.setattr(hits, "NEED_CACHE_SECONDS", hits.NEED_CACHE_SECONDS)
    demo_service.simulation_repeatable()
    _fresh_database(settings)
    first = _run(make_demo_campaign, live_server)
    _fresh_database(settings)
    second = _run(make_demo_campaign, live_server)

    assert first["hits"] >= 5 and first["gold_answers"] > 0 and not first["errors"]
    assert second == first

"""The per-HIT spam screen (annotation/services/screening.py) against the simulated spammers, through the real
API, consensus and screen: a small demo campaign, spammers of every kind arriving first and working until
stopped (simulate_crowd --spammers-first), then the honest crowd. Every spammer must be blocked — copycats by
speed, constant answerers by the bias test, coin-flippers by the campaign's accuracy bar
(Campaign.min_worker_accuracy, 0.65) — half of them within three HITs, and no honest worker whose true
accuracy is clear of the bar.

This tests the screen, not the qualification quiz: the campaign's pass mark is 0 so that every spammer gets
to work (at the default mark about six in seven of them fail the quiz and the screen never sees them).
The run repeats exactly (fixture ``repeatable``: eager Celery, one client, a fresh database so the server's
seeded draws get the same ids, the scheduler's synset counts read on every lease; see test_reproducible.py).
Before it did, the same test gave an always-"absent" spammer 3, 4 or 5 HITs before the block from run to run:
the bounds below hold for that spread, not only for the one run this test now repeats. Figures over many
runs and seeds: annotation/services/screening.py's docstring (benchmarks/simulate_policies.py spam20).
"""

import statistics

import pytest

from annotation import demo_images as demo
from annotation.services import demo as demo_service
from annotation.simulator.workers import SPAMMERS

SYNSETS = [demo.BY_LABEL[label].wnid for label in ("square", "circle", "star")]
PER_SYNSET = 150
# 30% of the images gold (the demo campaign's default is a tenth): 45 per synset, so that a newcomer's first
# HITs can hold the boosted share of gold (screening.NEWCOMER_GOLD_RATE) the bar judges them on. Spammers come
# first, when gold is nearly all the reference there is, and a coin-flipper gains only ~0.047 nats per exact
# reference against the 3 the bar needs, so in a campaign this small its block is still partly luck: with a
# fifth gold (24 per synset, 120 images) a trial of other lease draws (December 2026, not kept) left one
# unblocked after 18 HITs when the work ran out. With these figures the coin-flippers were blocked after 3 and
# 7 HITs (seed 4, this test), 3 and 4 (seed 2); seed 3 still leaves one unblocked after 17 HITs, out of work.
GOLD_SHARE = 0.3
BAR_MARGIN = 0.1  # honest workers at least this far above the bar are never blocked
MIX = "reliable:0.5,noisy:0.3,spammer:0.2"  # 40 workers: 8 spammers, two of each kind; 12 noisy honest


@pytest.fixture
def campaign(repeatable, make_demo_campaign):
    campaign = make_demo_campaign(name="spam shapes", wnids=SYNSETS, per_synset=PER_SYNSET, gold_share=GOLD_SHARE)
    campaign.quiz_pass_mark = 0.0
    campaign.save(update_fields=["quiz_pass_mark"])
    return campaign


def test_spammers_of_every_kind_are_blocked_within_a_few_hits_and_no_honest_worker_clear_of_the_bar_is(
    campaign, live_server
):
    options = demo_service.SimulationOptions(workers=40, mix=MIX, seed=4, concurrency=1, prefix="spam",
                                             spammers_first=True)  # fmt: skip

    report = demo_service.simulate(campaign=campaign, options=options, base_url=live_server.url)

    spam, honest = report["spammers"], report["honest"]
    kinds = spam["by_kind"]
    print({kind: {k: v for k, v in figures.items() if k != "total"} for kind, figures in kinds.items()})
    print("honest blocked:", honest["blocked_detail"], "by true accuracy:", honest["by_true_accuracy"])
    print("precision:", report["overall"]["precision"])
    assert not report["errors"]
    assert set(kinds) == set(SPAMMERS)
    assert all(figures["passed_quiz"] == figures["total"] == 2 for figures in kinds.values())
    # Every spammer blocked, coin-flippers included; copycats and constant answerers within five HITs
    # (arriving first, a spammer's early HITs have few references besides gold); half of all within three.
    for kind in SPAMMERS:
        assert kinds[kind]["blocked"] == 2, (kind, kinds[kind])
    for kind in ("copycat", "always_yes", "always_no"):
        assert kinds[kind]["max_hits_before_block"] <= 5, (kind, kinds[kind])
    caught = [h for figures in kinds.values() for h in figures["blocked_after_hits"]]
    assert len(caught) == 8 and statistics.median(caught) <= 3, caught
    # Honest workers below the bar may be blocked (that is the bar); none clear of it, by their true accuracy
    # on the items they answered (the lower of sensitivity and specificity, as the bar reads it).
    bar = campaign.min_worker_accuracy
    for worker in honest["blocked_detail"]:
        assert min(worker["true_sensitivity"], worker["true_specificity"]) < bar + BAR_MARGIN, worker
    assert sum(n for n, _ in honest["by_true_accuracy"].values()) >= 10  # the honest crowd did work
    assert report["overall"]["precision"] >= 0.97

"""A researcher pauses the demo campaign for a moment and resumes it: the simulated crowd (what ``make demo`` runs
in the background) waits and comes back, as people do, instead of leaving for good."""

import threading
import time

from annotation import demo_images as demo
from annotation.models import Campaign
from annotation.selectors import demo as demo_selectors
from annotation.services import demo as demo_service
from annotation.services.campaigns import campaign_set_state
from annotation.simulator.runner import CrowdRun
from annotation.simulator.workers import crowd_make

CIRCLE = demo.BY_LABEL["circle"].wnid


def test_a_crowd_that_finds_the_campaign_paused_comes_back_when_it_runs_again(make_demo_campaign, live_server):
    # Every simulated worker who asked for a quiz or a HIT during a pause stopped for good ("campaign not
    # running", "quiz refused (409)"): pausing the demo for ten seconds left it without most of its crowd.
    campaign = make_demo_campaign(name="paused shapes", wnids=[CIRCLE], per_synset=12)
    campaign = campaign_set_state(campaign=campaign, state=Campaign.State.PAUSED)
    accounts = demo_service.simulation_accounts(crowd=crowd_make(2, "reliable:1", seed=2), prefix="paused")
    oracle = demo_selectors.demo_oracle(campaign=campaign)
    run = CrowdRun(
        base_url=live_server.url, campaign_id=campaign.id, accounts=accounts,
        oracle=lambda wnid, path: oracle.get((wnid, path)), concurrency=1, max_hits=2, pace=0.01,
        arrivals_seconds=1.0,
    )  # fmt: skip
    crowd = threading.Thread(target=run.run)
    crowd.start()
    try:
        deadline = time.monotonic() + 30
        while run.log.paused_answers < 2 and crowd.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run.log.paused_answers >= 2  # both workers were told the campaign is paused, and stayed
        campaign_set_state(campaign=campaign, state=Campaign.State.RUNNING)
        crowd.join(timeout=120)
    finally:
        run.stop.set()
        crowd.join(timeout=30)

    assert run.log.hits == 2 and not run.log.errors
    assert sorted(w.quiz for w in run.logs) == ["passed", "passed"]
    assert not [w.stopped for w in run.logs if w.stopped not in ("", "budget", "had enough")]

"""Two campaigns over one synset share its candidates (one per image and synset), so each campaign's counters are
the states of the synset's candidates, whichever campaign's votes or override moved them (QA: a researcher's
override in the other campaign went below zero, an IntegrityError answered as a 500)."""

from annotation.models import CampaignSynset, Candidate
from annotation.services.campaigns import campaign_create
from annotation.services.consensus import candidates_update
from annotation.services.hits import hit_next, hit_submit
from annotation.services.manage import candidate_override
from tests.annotation.hits.conftest import SHAPES, answers_for, qualify


def counters(campaign):
    return CampaignSynset.objects.filter(campaign=campaign).values_list("accepted", "rejected", "unresolved").get()


def states():
    return tuple(
        Candidate.objects.filter(state=s).count() for s in (Candidate.State.ACCEPTED, "rejected", "unresolved")
    )


def test_votes_and_overrides_in_one_campaign_move_the_counters_of_every_campaign_over_the_synset(
    make_campaign, worker, other_worker, researcher, django_capture_on_commit_callbacks
):
    voting = make_campaign(candidates=10, min_votes=2, max_votes=2, confidence=0.9)
    idle = campaign_create(owner=researcher, name="same synset", wnids=SHAPES[:1])
    for w in (worker, other_worker):
        qualify(w, voting)
        hit = hit_next(worker=w, campaign=voting)
        with django_capture_on_commit_callbacks(execute=True):
            hit_submit(worker=w, hit_id=hit.id, answers=answers_for(hit), idempotency_key=f"shared-{w.id}")
    candidates_update(candidate_ids=list(Candidate.objects.values_list("id", flat=True)))
    accepted = states()[0]
    assert accepted > 0
    assert counters(voting) == counters(idle) == states()

    # A researcher's override in the campaign that cast no vote: counted there and in the other.
    target = Candidate.objects.filter(state="accepted").first()
    candidate_override(campaign=idle, candidate_id=target.id, action="reject", reason="not a circle", by=researcher)
    assert counters(idle) == counters(voting) == states() == (accepted - 1, 1, 0)

    # A campaign created over the synset afterwards starts from its candidates' states.
    later = campaign_create(owner=researcher, name="later", wnids=SHAPES[:1])
    assert counters(later) == states()

"""A block lands while the worker has a quiz open (a person's block, or the spam screen's after a HIT in a
campaign with a quiz per synset): answering that quiz must not lift the block."""

import pytest

from annotation.errors import Forbidden
from annotation.models import GoldItem, QuizAttempt
from annotation.services.campaigns import campaign_set_state
from annotation.services.manage import worker_block
from annotation.services.quiz import quiz_start, quiz_submit
from tests.annotation.hits.conftest import SHAPES, make_gold
from workers.models import Qualification, WorkerProfile

pytestmark = pytest.mark.django_db


def test_passing_a_quiz_opened_before_a_block_does_not_unblock_the_worker(make_campaign, worker, researcher):
    campaign = make_campaign(wnids=SHAPES[:1], candidates=4, running=False, quiz_size=4, quiz_pass_mark=0.75)
    make_gold(SHAPES[0], 2, present=True)
    make_gold(SHAPES[0], 2, present=False)
    campaign = campaign_set_state(campaign=campaign, state="running")
    attempt = quiz_start(worker=worker, campaign=campaign)
    worker_block(worker=worker, campaign=campaign, reason="Copies another worker's answers.", by=researcher)
    truth = dict(GoldItem.objects.values_list("id", "present"))

    with pytest.raises(Forbidden) as refused:
        quiz_submit(worker=worker, attempt_id=attempt.id, answers={str(i): truth[i] for i in attempt.items})

    assert str(refused.value) == (
        "You are blocked from this campaign. The reason recorded: Copies another worker's answers. A researcher of "
        "the campaign can unblock you."
    )
    qualification = Qualification.objects.get(worker=worker, campaign=campaign)
    assert (qualification.status, qualification.attempts, qualification.best_score) == ("blocked", 0, None)
    assert QuizAttempt.objects.get(id=attempt.id).score is None
    assert WorkerProfile.objects.get(user=worker).blocked is True

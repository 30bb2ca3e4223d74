"""64 workers hammering the scheduler at once, on the real database: no candidate reaches a worker twice,
none is handed out beyond the votes it needs, and every counter agrees with the rows."""

import threading
import time
from collections import Counter

import pytest
from django.db import connection, connections

from annotation.models import Candidate, HitItem, Vote
from annotation.selectors.hits import hit_may_come
from annotation.services.hits import hit_next, hit_submit
from tests.annotation.hits.conftest import SHAPES, answers_for, qualify
from tests.wordnet_snapshot import plane_figures_import
from workers.roles import Role
from workers.services import account_create

WORKERS = 64
VOTES = 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row-lock concurrency is proven on PostgreSQL (CI); SQLite serialises writers instead",
)
def test_64_concurrent_workers_never_get_a_candidate_twice_nor_over_assign(make_campaign):
    plane_figures_import()
    campaign = make_campaign(wnids=SHAPES, candidates=120, min_votes=VOTES, max_votes=VOTES, images_per_hit=12)
    workers = [account_create(username=f"w{i:02d}", password="pw-crowd-1x", role=Role.WORKER) for i in range(WORKERS)]
    for w in workers:
        qualify(w, campaign)
    errors: list[BaseException] = []
    received: Counter = Counter()
    lock = threading.Lock()
    start = threading.Barrier(WORKERS)

    def crowd_member(worker) -> None:
        try:
            start.wait()
            looks = 0
            while True:
                hit = hit_next(worker=worker, campaign=campaign)
                if hit is None:
                    # As the labelling page does on a 204 with Retry-After: look again while more may come. The
                    # last candidates can be momentarily out of reach (locked by another request's lease or
                    # weighing); a member that left at the first "nothing now" could leave them a vote short.
                    if looks < 200 and hit_may_come(worker=worker, campaign=campaign):
                        looks += 1
                        time.sleep(0.05)
                        continue
                    break
                ids = list(hit.items.values_list("candidate_id", flat=True))
                with lock:
                    received.update((worker.id, c) for c in ids)
                hit_submit(worker=worker, hit_id=hit.id, answers=answers_for(hit), idempotency_key=f"k-{hit.id:010d}")
        except BaseException as error:  # reported below with the thread's failure
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=crowd_member, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)

    assert errors == []
    assert max(received.values()) == 1  # no worker saw a candidate twice
    votes = Counter(Vote.objects.values_list("candidate_id", flat=True))
    assert len(votes) == 360 and set(votes.values()) == {VOTES}  # every candidate got exactly what it needed
    assert HitItem.objects.count() == 360 * VOTES
    assert set(Candidate.objects.values_list("pending_count", flat=True)) == {0}
    assert all(c.votes_count == votes[c.id] == c.yes_count for c in Candidate.objects.all())


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is proven on PostgreSQL (CI)")
def test_concurrent_requests_to_make_one_candidate_gold_give_one_gold_item_and_conflicts(make_campaign):
    """QA: two researchers' clicks (or a double click) on "make gold" for the same candidate both passed the
    "already gold?" check, and the second INSERT hit the unique candidate: a 500 (IntegrityError)."""
    from annotation.errors import Conflict
    from annotation.models import GoldItem
    from annotation.services.manage import gold_from_candidate

    plane_figures_import()
    campaign = make_campaign(wnids=SHAPES[:1], candidates=1)
    candidate = Candidate.objects.get()
    outcomes: list = []
    start = threading.Barrier(8)

    def click() -> None:
        try:
            start.wait()
            gold_from_candidate(campaign=campaign, candidate_id=candidate.id, present=True)
            outcomes.append("created")
        except BaseException as error:  # reported below
            outcomes.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert outcomes.count("created") == 1
    assert all(isinstance(o, Conflict) for o in outcomes if o != "created"), outcomes
    assert list(GoldItem.objects.values_list("candidate_id", "present")) == [(candidate.id, True)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is proven on PostgreSQL (CI)")
def test_promotions_to_gold_and_single_gold_requests_at_once_make_each_candidate_gold_once(make_campaign):
    """QA (read in the code): the promotion inserted its gold items unlocked, so a concurrent "make gold" of one
    of its candidates failed its INSERT on the unique candidate (a 500), or two promotions deadlocked."""
    from annotation.errors import Conflict
    from annotation.models import GoldItem
    from annotation.services.manage import gold_from_candidate, gold_promote

    plane_figures_import()
    campaign = make_campaign(wnids=SHAPES[:1], candidates=6)
    Candidate.objects.update(state=Candidate.State.ACCEPTED, posterior=0.999, votes_count=5, yes_count=5)
    ids = list(Candidate.objects.order_by("id").values_list("id", flat=True))
    outcomes: list = []
    start = threading.Barrier(8)

    def act(i: int) -> None:
        try:
            start.wait()
            if i % 2:
                gold_promote(campaign=campaign, synset_id=int(SHAPES[0][1:]))
            else:
                gold_from_candidate(campaign=campaign, candidate_id=ids[i // 2], present=True)
            outcomes.append("done")
        except BaseException as error:  # reported below
            outcomes.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=act, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert all(o == "done" or isinstance(o, Conflict) for o in outcomes), outcomes  # "already gold": 409
    assert outcomes.count("done") >= 4  # every promotion (it skips what is gold by then), and the first clicks
    assert sorted(GoldItem.objects.values_list("candidate_id", flat=True)) == ids  # each once

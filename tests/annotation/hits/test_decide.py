"""The Django side of the stopping rule (annotation.services.consensus.decide): asymmetric bars and the
hysteresis that keeps a refit from reopening decided candidates by a hair."""

from types import SimpleNamespace

import numpy as np

from annotation.consensus.stopping import ItemState
from annotation.services.consensus import REJECT_CONFIDENCE, _confusion, decide

CAMPAIGN = SimpleNamespace(confidence=0.999, min_votes=2, max_votes=8)
TYPICAL = _confusion(np.array([0.9]), np.array([0.9]))[0]


def codes(p, n, current=None):
    return [ItemState(int(c)) for c in decide(np.array(p), np.array(n), CAMPAIGN, TYPICAL, current)[0]]


def test_accepting_needs_the_campaign_confidence_and_rejecting_the_lower_bar():
    assert REJECT_CONFIDENCE == 0.95
    assert codes([0.9995, 0.998, 0.04, 0.06], [3, 3, 3, 3]) == [
        ItemState.ACCEPTED, ItemState.VOTING, ItemState.REJECTED, ItemState.VOTING,
    ]  # fmt: skip
    assert codes([0.9995, 0.01], [1, 1]) == [ItemState.VOTING, ItemState.VOTING]  # min_votes first
    assert codes([0.6, 0.01], [8, 8]) == [ItemState.UNRESOLVED, ItemState.REJECTED]


def test_a_decided_candidate_keeps_its_decision_within_a_nat_of_the_bar():
    decided = ["accepted", "accepted", "rejected", "rejected", "voting"]
    p = [0.998, 0.99, 0.1, 0.2, 0.998]
    assert codes(p, [3] * 5, decided) == [
        ItemState.ACCEPTED, ItemState.VOTING, ItemState.REJECTED, ItemState.VOTING, ItemState.VOTING,
    ]  # fmt: skip
    # Votes that stop counting (a blocked worker's) take it below min_votes: reopened whatever p says.
    assert codes([0.9995], [1], ["accepted"]) == [ItemState.VOTING]


def test_priority_is_zero_once_decided_and_positive_while_voting():
    _, priority = decide(np.array([0.9995, 0.7]), np.array([3, 3]), CAMPAIGN, TYPICAL, ["voting", "voting"])
    assert priority[0] == 0 and priority[1] > 0


def test_a_candidate_that_has_cast_its_vote_budget_is_unresolved_even_if_some_votes_no_longer_count():
    # 8 cast (max_votes), 7 counting (a blocked worker's vote dropped): undecided → unresolved, not voting for
    # good (the scheduler leases by votes cast). 7 cast of 8: still voting, with a priority.
    states, priority = decide(
        np.array([0.7, 0.9995, 0.7]), np.array([7, 7, 7]), CAMPAIGN, TYPICAL, ["voting"] * 3, [8, 8, 7]
    )
    assert [ItemState(int(c)) for c in states] == [ItemState.UNRESOLVED, ItemState.ACCEPTED, ItemState.VOTING]
    assert priority[0] == 0 and priority[2] > 0

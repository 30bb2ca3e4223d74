"""A campaign's votes as numpy arrays, streamed from the database (the refit and the consensus evaluation)."""

from __future__ import annotations

import numpy as np

from annotation.models import Campaign, Vote

STREAM_CHUNK = 50_000  # rows per server-side fetch


def campaign_vote_arrays(
    *, campaign: Campaign, ordered: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(candidate ids, worker ids, answers, is_gold)`` of every present/absent vote of the campaign ("can't
    tell" carries no vote). ``ordered`` reads them by vote id, so that a seeded draw over them repeats."""
    rows = Vote.objects.filter(hit__campaign_id=campaign.id, answer__lt=Vote.Answer.CANT_TELL)
    rows = rows.order_by("id") if ordered else rows.order_by()
    stream = rows.values_list("candidate_id", "worker_id", "answer", "is_gold").iterator(chunk_size=STREAM_CHUNK)
    table = np.fromiter((x for row in stream for x in row), dtype=np.int64).reshape(-1, 4)
    return table[:, 0], table[:, 1], table[:, 2], table[:, 3].astype(bool)

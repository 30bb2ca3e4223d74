"""The crowd's raw answers and the consensus behind every label, for audit and for research on
aggregation:

    votes/votes.csv          one row per answer on an exported label's candidate (votes recorded before the
                             snapshot): candidate, image, wnid, worker (anonymised), answer, response_ms, gold
    votes/consensus.csv      one row per direct label: posterior, model version, votes, yes / no / can't
                             tell, distinct workers
    votes/consensus.jsonl    the same, as JSON lines

Workers appear as a stable keyed hash (HMAC-SHA256 of the user id under a key derived from SECRET_KEY,
first 16 hex digits): the same worker has the same code in every version of this installation, and the code
cannot be turned back into an account without the key.
"""

from __future__ import annotations

import csv
import io

from export.files import json_line
from export.formats.base import Context

NAME = "votes"
ROOT = "votes"
ANSWERS = {0: "absent", 1: "present", 2: "cant_tell"}
VOTE_COLUMNS = ["candidate_id", "image_id", "wnid", "worker", "answer", "response_ms", "is_gold", "created"]
CONSENSUS_COLUMNS = ["candidate_id", "image_id", "wnid", "split", "posterior", "model_version", "votes", "yes",
                     "no", "cant_tell", "workers"]  # fmt: skip


class _CsvOut:
    """csv.writer over a binary sink, one row at a time."""

    def __init__(self, sink):
        self.sink, self.buffer = sink, io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\n")

    def row(self, values) -> None:
        self.writer.writerow(values)
        self.sink.write(self.buffer.getvalue().encode())
        self.buffer.seek(0)
        self.buffer.truncate()


def write(ctx: Context) -> None:
    with ctx.folder.open(f"{ROOT}/votes.csv") as sink:
        out = _CsvOut(sink)
        out.row(VOTE_COLUMNS)
        for vote in ctx.rows("votes"):
            out.row([vote[c] if c != "answer" else ANSWERS[vote[c]] for c in VOTE_COLUMNS])
    with ctx.folder.open(f"{ROOT}/consensus.csv") as sink, ctx.folder.open(f"{ROOT}/consensus.jsonl") as lines:
        out = _CsvOut(sink)
        out.row(CONSENSUS_COLUMNS)
        for label in ctx.rows("consensus"):
            out.row(["" if label[c] is None else label[c] for c in CONSENSUS_COLUMNS])
            lines.write(json_line({c: label[c] for c in CONSENSUS_COLUMNS}))
            ctx.tick(1)

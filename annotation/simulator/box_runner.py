"""Drive simulated workers through the box pipeline's REST API over HTTP (httpx): the qualification quiz,
then draw, quality and coverage tasks until nobody gets work. No Django: the caller hands in accounts,
the campaign id and two oracles (what an image shows for the quiz; where the instances are for boxes).

One client, one request at a time, in a seeded order: in each pass every worker still at work takes one
turn; a turn tries the three task kinds in an order drawn for it (verification first twice as often as
drawing, so boxes do not pile up unverified) and does the first that has work. The run ends when a whole
pass finds no work for anyone, or after ``max_tasks`` tasks. Sequential on purpose: a worker's answer to
an image depends only on the seed (drawing.py), the box pipeline decides in the submitting transaction (no
background job to wait for), and the server's own choices (the order in which it tries a campaign's
synsets, gold slots) come from Python's ``random``: seed that too, with the campaign's gold rate at 0, and
a run against an in-process server repeats exactly (the test does this).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import numpy as np

from annotation.simulator import drawing
from annotation.simulator.runner import Account, Oracle
from annotation.simulator.workers import ItemTruth

BoxOracle = Callable[[str, str], "drawing.BoxTruth | None"]  # (synset wnid, thumbnail URL path) → truth
KIND_ORDERS = (("quality", "coverage", "draw"), ("coverage", "quality", "draw"), ("draw", "quality", "coverage"))
logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass
class BoxRunLog:
    tasks: Counter = field(default_factory=Counter)  # per kind
    items: Counter = field(default_factory=Counter)  # per kind
    answers: Counter = field(default_factory=Counter)  # per answer given
    ms: Counter = field(default_factory=Counter)  # worker milliseconds per kind
    quiz: Counter = field(default_factory=Counter)  # passed | failed | blocked | error
    workers_by_kind: Counter = field(default_factory=Counter)  # simulated kind of the workers who passed
    wall_seconds: float = 0.0
    passes: int = 0
    errors: list[str] = field(default_factory=list)


class BoxRun:
    def __init__(
        self,
        *,
        base_url: str,
        campaign_id: int,
        accounts: Sequence[Account],
        oracle: Oracle,
        box_oracle: BoxOracle,
        seed: int = 1,
        max_tasks: int | None = None,
        timeout: float = 60.0,
    ):
        self.base = base_url.rstrip("/")
        self.campaign_id = campaign_id
        self.accounts = list(accounts)
        self.oracle = oracle
        self.box_oracle = box_oracle
        self.max_tasks = max_tasks
        self.timeout = timeout
        self.rng = np.random.default_rng([seed, 4242])
        self.log = BoxRunLog()
        self._hit_no = [0] * len(self.accounts)

    def run(self) -> BoxRunLog:
        started = time.perf_counter()
        with httpx.Client(base_url=self.base, timeout=self.timeout) as client:
            working = [i for i in range(len(self.accounts)) if self._quiz(client, i)]
            for i in working:
                self.log.workers_by_kind[self.accounts[i].worker.kind] += 1
            while working and not self._spent():
                self.log.passes += 1
                order = [working[int(k)] for k in self.rng.permutation(len(working))]
                progress = False
                for i in order:
                    if self._spent():
                        break
                    kinds = KIND_ORDERS[int(self.rng.integers(len(KIND_ORDERS)))]
                    progress |= any(self._task(client, i, kind) for kind in kinds)
                if not progress:
                    break
        self.log.wall_seconds = time.perf_counter() - started
        return self.log

    def _spent(self) -> bool:
        return self.max_tasks is not None and sum(self.log.tasks.values()) >= self.max_tasks

    # --------------------------------------------------------------------------------------------- http
    def _headers(self, i: int) -> dict[str, str]:
        return {"Authorization": f"Token {self.accounts[i].token}"}

    def _post(self, client: httpx.Client, path: str, i: int, payload: dict | None) -> httpx.Response:
        """POST, waiting out 429s and retrying a 5xx twice with the same payload (the same idempotency key)."""
        for attempt in range(6):
            reply = client.post(path, headers=self._headers(i), json=payload)
            if reply.status_code == 429:
                time.sleep(min(float(reply.headers.get("Retry-After") or 1), 30))
                continue
            if reply.status_code >= 500 and attempt < 2:
                self._error(f"{path}: {reply.status_code} {reply.text[:200]}")
                time.sleep(0.2)
                continue
            return reply
        return reply

    def _error(self, text: str) -> None:
        if len(self.log.errors) < 50:
            self.log.errors.append(text)

    # --------------------------------------------------------------------------------------------- steps
    def _quiz(self, client: httpx.Client, i: int) -> bool:
        """The campaign's qualification quiz, answered like presence HITs; True when the worker may work."""
        worker = self.accounts[i].worker
        reply = self._post(client, f"/api/v1/campaigns/{self.campaign_id}/quiz/", i, None)
        if reply.status_code == 409 and "already qualified" in reply.text:
            self.log.quiz["passed"] += 1
            return True
        if reply.status_code != 201:
            self.log.quiz["blocked" if reply.status_code == 403 else "error"] += 1
            return False
        quiz = reply.json()
        items = []
        for item in quiz["items"]:
            truth = self.oracle(item["synset"]["wnid"], urlsplit(item["thumbnail"]).path)
            items.append(truth or ItemTruth(key=item["thumbnail"], query_wnid=item["synset"]["wnid"],
                                            present=frozenset()))  # fmt: skip
        said = worker.answer_quiz(items)
        answers = {str(item["id"]): present for item, present in zip(quiz["items"], said, strict=True)}
        reply = self._post(client, f"/api/v1/quizzes/{quiz['id']}/submit/", i, {"answers": answers})
        passed = reply.status_code == 200 and reply.json()["passed"]
        self.log.quiz["passed" if passed else "failed"] += 1
        self.log.ms["quiz"] += round(len(items) * worker.median_ms)
        return passed

    def _task(self, client: httpx.Client, i: int, kind: str) -> bool:
        """Lease a task of this kind and answer it; False when there is no such work for this worker."""
        reply = self._post(client, f"/api/v1/campaigns/{self.campaign_id}/boxes/{kind}/next/", i, None)
        if reply.status_code == 204:
            return False
        if reply.status_code != 200:
            self._error(f"next {kind}: {reply.status_code} {reply.text[:200]}")
            return False
        task = reply.json()
        worker, hit_no = self.accounts[i].worker, self._hit_no[i]
        wnid = task["synset"]["wnid"]
        answers, spent = [], 0
        for item in task["items"]:
            image = item["image"]
            truth = self.box_oracle(wnid, urlsplit(image["thumbnail"]).path) or drawing.BoxTruth(
                key=image["thumbnail"], width=image["width"], height=image["height"], instances=()
            )
            if kind == "draw":
                said = drawing.draw(worker, truth, [tuple(b) for b in item["boxes"]], hit_no=hit_no)
                entry = {"item": item["id"], "answer": said.answer, "ms": said.ms}
                if said.box is not None:
                    entry["boxes"] = [list(said.box)]
                ms = said.ms
            elif kind == "quality":
                answer, ms = drawing.judge_quality(worker, truth, tuple(item["box"]), hit_no=hit_no)
                entry = {"item": item["id"], "answer": answer, "ms": ms}
            else:
                answer, ms = drawing.judge_coverage(worker, truth, [tuple(b) for b in item["boxes"]], hit_no=hit_no)
                entry = {"item": item["id"], "answer": answer, "ms": ms}
            answers.append(entry)
            spent += ms
        payload = {"idempotency_key": uuid.uuid4().hex, "answers": answers}
        reply = self._post(client, f"/api/v1/box-tasks/{task['id']}/submit/", i, payload)
        if reply.status_code not in (200, 201):
            self._error(f"submit {kind}: {reply.status_code} {reply.text[:200]}")
            return False
        self._hit_no[i] += 1
        self.log.tasks[kind] += 1
        self.log.items[kind] += len(answers)
        self.log.ms[kind] += spent
        self.log.answers.update(f"{kind}:{entry['answer']}" for entry in answers)
        return True


def run_boxes(**kwargs) -> BoxRunLog:
    """Run the box pipeline with a simulated crowd (see :class:`BoxRun` for the arguments)."""
    return BoxRun(**kwargs).run()

"""Drive simulated workers through the real REST API over HTTP (httpx). No Django: the caller hands in
accounts (username + token or password), the campaign id and an *oracle* that tells what an image shows.

Time. Every worker has a simulated clock: it arrives at a random moment of the first simulated hour
(``arrivals_seconds``), and has an appetite (how many HITs it will do at most: lognormal, median
APPETITE_MEDIAN, a long tail — on crowd markets a few workers do most of the work). After each step (the quiz,
a HIT) it comes back when its answers would have taken (the sum of its response times) plus a pause between
HITs. With ``spammers_first`` the spammers and adversarial workers all arrive within the first
SPAMMERS_FIRST_SECONDS and have no appetite limit (they work until blocked, out of work or out of budget, as
someone paid per HIT for no effort would): a fair measure of the spam screen, which otherwise sees many
spammers arrive after the work is gone or stop after a HIT or two on their own — and the hard case for it, as
few other votes exist yet to compare their answers with. A pool of ``concurrency`` threads always serves the
worker whose clock is earliest, so fast clickers come back more often than careful workers, as in a real
crowd, and the server sees one interleaved stream of HITs. With ``pace`` > 0 the run also waits in real time
(``pace`` = 1: real speed; 0.1: ten times faster), which is what the living demo uses.

A worker stops when the server has no work for it (204), when it is blocked (403 on the quiz or the next
HIT: ``blocked_after`` records how many HITs it had submitted by then), when it fails the quiz, or when
the run's HIT budget is spent. 429 answers are honoured (Retry-After) and the step is tried again.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import numpy as np

from annotation.simulator.workers import ItemTruth, SimWorker

Oracle = Callable[[str, str], "ItemTruth | None"]  # (synset wnid, image URL path) → truth
ARRIVAL_SECONDS = 3600.0
SPAMMERS_FIRST_SECONDS = 120.0
APPETITE_MEDIAN = 8.0
APPETITE_SIGMA = 1.0
logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
PAUSE_MEDIAN_SECONDS = 8.0
MAX_SERVER_ERRORS = 50
NO_WORK_TRIES = 6
NO_WORK_WAIT_SECONDS = 300.0  # simulated, between two looks for work
# In real time (pace > 0), a worker also keeps looking for at least this long: with a real Celery worker the
# candidates of the last HITs await their consensus job (the scheduler holds them back until it has run), and
# a busy machine can take longer than six looks to run it — the crowd then left a fifth of a small campaign open.
NO_WORK_PATIENCE_REAL_SECONDS = 60.0
# A paused campaign (a researcher trying Pause on the demo's dashboard): a worker looks again this much later
# (simulated), for as long as the campaign stays paused; a finished one sends the worker away for good.
PAUSED_WAIT_SECONDS = 60.0
PAUSED = " is paused, not running"  # the API's 409 sentence for a paused campaign (hits/next and quiz)


@dataclass
class Account:
    username: str
    worker: SimWorker
    token: str = ""
    password: str = ""


@dataclass
class WorkerLog:
    username: str
    kind: str
    quiz: str = "pending"  # passed | failed | blocked | error; "next": passed, another synset's quiz due
    hits: int = 0
    answers: int = 0
    ms_total: int = 0
    blocked_after: int | None = None  # HITs submitted before the first "blocked" refusal
    stopped: str = ""
    errors: int = 0
    # Who the worker truly is, for reports on whom the screen blocked: their nominal traits, and over the HIT
    # items they answered (gold included) how many show the synset and how many of those they were expected to
    # get right (SimWorker.p_right), the same for the others — their true sensitivity and specificity there.
    sensitivity: float = 0.0
    specificity: float = 0.0
    positives: int = 0
    positives_right: float = 0.0
    negatives: int = 0
    negatives_right: float = 0.0

    def true_rates(self) -> tuple[float | None, float | None]:
        """(sensitivity, specificity) expected on the items this worker answered; None without such items."""
        se = self.positives_right / self.positives if self.positives else None
        sp = self.negatives_right / self.negatives if self.negatives else None
        return se, sp


@dataclass
class RunLog:
    workers: list[WorkerLog]
    wall_seconds: float = 0.0
    simulated_seconds: float = 0.0
    hits: int = 0
    throttled: int = 0
    paused_answers: int = 0  # quizzes and HITs refused because the campaign was paused
    errors: list[str] = field(default_factory=list)


class _Stop(Exception):
    def __init__(self, reason: str):
        self.reason = reason


@dataclass(order=True)
class _Turn:
    clock: float
    seq: int
    index: int = field(compare=False)


class CrowdRun:
    def __init__(
        self,
        *,
        base_url: str,
        campaign_id: int,
        accounts: Sequence[Account],
        oracle: Oracle,
        concurrency: int = 16,
        max_hits: int | None = None,
        pace: float = 0.0,
        seed: int = 1,
        timeout: float = 60.0,
        stop: threading.Event | None = None,
        progress: Callable[[int], None] | None = None,
        spammers_first: bool = False,
        arrivals_seconds: float = ARRIVAL_SECONDS,
    ):
        self.base = base_url.rstrip("/")
        self.campaign_id = campaign_id
        self.accounts = list(accounts)
        self.oracle = oracle
        self.concurrency = max(1, concurrency)
        self.max_hits = max_hits
        self.pace = pace
        self.timeout = timeout
        self.stop = stop or threading.Event()
        self.progress = progress
        self.logs = [
            WorkerLog(a.username, a.worker.kind, sensitivity=a.worker.sensitivity, specificity=a.worker.specificity)
            for a in self.accounts
        ]
        self.log = RunLog(self.logs)
        self._rng = np.random.default_rng([seed, 99])
        self._heap: list[_Turn] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._busy = 0
        self._server_errors = 0
        self._hits_started = 0
        self._clock_max = 0.0
        self._hit_no = [0] * len(self.accounts)
        self._idle = [0] * len(self.accounts)
        real_wait = NO_WORK_WAIT_SECONDS * pace
        self._no_work_tries = max(NO_WORK_TRIES, math.ceil(NO_WORK_PATIENCE_REAL_SECONDS / real_wait) if pace else 0)
        self._appetite = [max(1, round(x)) for x in self._rng.lognormal(math.log(APPETITE_MEDIAN), APPETITE_SIGMA,
                                                                         len(self.accounts))]  # fmt: skip
        for i, account in enumerate(self.accounts):
            arrival = float(self._rng.uniform(0, arrivals_seconds))
            if spammers_first and account.worker.is_spammer:
                arrival *= min(1.0, SPAMMERS_FIRST_SECONDS / arrivals_seconds)
                self._appetite[i] = math.inf
            self._push(arrival, i)

    # ------------------------------------------------------------------------------------------ schedule
    def _push(self, clock: float, index: int) -> None:
        heapq.heappush(self._heap, _Turn(clock, next(self._seq), index))

    def _take(self) -> _Turn | None:
        """The earliest worker, or None when none is left and nobody can put one back."""
        while True:
            with self._lock:
                if self.stop.is_set():
                    return None
                if self._heap and (self.max_hits is None or self._hits_started < self.max_hits):
                    turn = heapq.heappop(self._heap)
                    self._busy += 1
                    return turn
                if self._busy == 0 or (self.max_hits is not None and self._hits_started >= self.max_hits):
                    return None
            time.sleep(0.005)

    def run(self) -> RunLog:
        started = time.perf_counter()
        self._t0 = started
        threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.log.wall_seconds = time.perf_counter() - started
        self.log.simulated_seconds = self._clock_max
        return self.log

    def _loop(self) -> None:
        with httpx.Client(base_url=self.base, timeout=self.timeout) as client:
            while (turn := self._take()) is not None:
                again: float | None = None
                try:
                    if self.pace > 0:
                        delay = self._t0 + turn.clock * self.pace - time.perf_counter()
                        if delay > 0 and self.stop.wait(delay):
                            break
                    again = self._step(client, turn)
                except _Stop as stop:
                    self.logs[turn.index].stopped = stop.reason
                except Exception as error:  # a transport error, or a bug: the worker stops, the run goes on
                    self.logs[turn.index].errors += 1
                    self._error(f"{self.accounts[turn.index].username}: {error!r}")
                    again = turn.clock + 30.0 if self.logs[turn.index].errors < 5 else None
                    if again is None:
                        self.logs[turn.index].stopped = "errors"
                finally:
                    with self._lock:
                        self._busy -= 1
                        if again is not None:
                            self._push(again, turn.index)
                        self._clock_max = max(self._clock_max, turn.clock)

    def _error(self, text: str) -> None:
        with self._lock:
            if len(self.log.errors) < 50:
                self.log.errors.append(text)

    # ------------------------------------------------------------------------------------------ one step
    def _headers(self, client: httpx.Client, account: Account) -> dict[str, str]:
        if not account.token:
            reply = self._post(client, "/api/v1/auth/token/", None, {"username": account.username,
                                                                      "password": account.password})  # fmt: skip
            if reply.status_code != 200:
                raise _Stop(f"sign-in refused ({reply.status_code})")
            account.token = reply.json()["token"]
        return {"Authorization": f"Token {account.token}"}

    def _post(self, client: httpx.Client, path: str, headers: dict | None, payload: dict | None) -> httpx.Response:
        """POST, waiting out 429s (Retry-After) and retrying 5xx a few times; the same payload (so the same
        idempotency key) every time, as a careful client does."""
        for attempt in range(8):
            reply = client.post(path, headers=headers, json=payload)
            if reply.status_code == 429:
                with self._lock:
                    self.log.throttled += 1
                wait = float(reply.headers.get("Retry-After") or 1)
                if self.stop.wait(min(max(wait, 0.05), 60)):
                    raise _Stop("stopped")
                continue
            if reply.status_code >= 500:
                self._error(f"{path}: {reply.status_code} {reply.text[:200]}")
                with self._lock:
                    self._server_errors += 1
                    if self._server_errors >= MAX_SERVER_ERRORS:
                        self.stop.set()  # the server is broken, not busy: give up rather than hammer it
                if attempt < 3 and not self.stop.is_set():
                    time.sleep(0.2 * (attempt + 1))
                    continue
            return reply
        return reply

    def _truth(self, synset: dict, url: str) -> ItemTruth:
        truth = self.oracle(synset["wnid"], urlsplit(url).path)
        if truth is None:  # not a demo image: an honest worker would look; here it is a coin toss
            return ItemTruth(key=url, query_wnid=synset["wnid"], present=frozenset())
        return truth

    def _step(self, client: httpx.Client, turn: _Turn) -> float | None:
        """One step of one worker; returns when it comes back (simulated clock) or None when it is done."""
        account, log = self.accounts[turn.index], self.logs[turn.index]
        headers = self._headers(client, account)
        worker = account.worker
        if log.quiz in ("pending", "next"):
            return turn.clock + self._quiz(client, headers, account, log)
        if log.hits >= self._appetite[turn.index]:
            raise _Stop("had enough")
        with self._lock:
            if self.max_hits is not None and self._hits_started >= self.max_hits:
                raise _Stop("budget")
            self._hits_started += 1
        counted = False
        try:
            reply = self._post(client, f"/api/v1/campaigns/{self.campaign_id}/hits/next/", headers, None)
            if reply.status_code == 204:
                # Nothing for this worker right now. Without Retry-After nothing is left for them: stop. With it
                # the rest is leased to others or awaiting consensus: look again a few simulated minutes later,
                # and give up after NO_WORK_TRIES empty answers in a row.
                if "Retry-After" not in reply.headers:
                    raise _Stop("no work")
                self._idle[turn.index] += 1
                if self._idle[turn.index] >= self._no_work_tries:
                    raise _Stop("no work")
                return turn.clock + NO_WORK_WAIT_SECONDS
            self._idle[turn.index] = 0
            if reply.status_code == 403:
                if "blocked" in reply.text:
                    log.blocked_after = log.hits
                    raise _Stop("blocked")
                if "quiz of another synset" in reply.text:  # a campaign with a quiz per synset
                    log.quiz = "next"
                    return turn.clock
                raise _Stop(f"refused: {reply.text[:120]}")
            if reply.status_code == 409:
                return turn.clock + self._paused_wait(reply)
            if reply.status_code != 200:
                log.errors += 1
                self._error(f"next: {reply.status_code} {reply.text[:200]}")
                return turn.clock + 60.0 if log.errors < 5 else None
            hit = reply.json()
            items = [self._truth(hit["synset"], item["thumbnail"]) for item in hit["items"]]
            answers = worker.answer_hit(items, hit_no=self._hit_no[turn.index])
            payload = {
                "idempotency_key": uuid.uuid4().hex,
                "answers": [
                    {"item": item["id"], "answer": "present" if present else "absent", "ms": ms}
                    for item, (present, ms) in zip(hit["items"], answers, strict=True)
                ],
            }
            reply = self._post(client, f"/api/v1/hits/{hit['id']}/submit/", headers, payload)
            if reply.status_code not in (200, 201):
                log.errors += 1
                self._error(f"submit: {reply.status_code} {reply.text[:200]}")
                return turn.clock + 60.0 if log.errors < 5 else None
            counted = True
            for item in items:
                right = worker.p_right(item, hit_no=self._hit_no[turn.index])
                if item.positive:
                    log.positives, log.positives_right = log.positives + 1, log.positives_right + right
                else:
                    log.negatives, log.negatives_right = log.negatives + 1, log.negatives_right + right
            spent = sum(ms for _, ms in answers)
            log.hits += 1
            log.answers += len(answers)
            log.ms_total += spent
            self._hit_no[turn.index] += 1
            with self._lock:
                self.log.hits += 1
                done = self.log.hits
            if self.progress:
                self.progress(done)
            return turn.clock + spent / 1000 + self._pause(worker)
        finally:
            if not counted:
                with self._lock:
                    self._hits_started -= 1

    def _paused_wait(self, reply: httpx.Response) -> float:
        """A 409 for work: when the campaign is only paused, the simulated seconds until the worker looks again."""
        if PAUSED not in reply.text:
            raise _Stop("campaign not running")
        with self._lock:
            self.log.paused_answers += 1
        return PAUSED_WAIT_SECONDS

    def _pause(self, worker: SimWorker) -> float:
        if worker.kind == "copycat":
            return 0.5
        with self._lock:
            return float(self._rng.lognormal(math.log(PAUSE_MEDIAN_SECONDS), 0.5))

    def _quiz(self, client: httpx.Client, headers: dict, account: Account, log: WorkerLog) -> float:
        reply = self._post(client, f"/api/v1/campaigns/{self.campaign_id}/quiz/", headers, None)
        if reply.status_code == 409 and "already qualified" in reply.text:
            log.quiz = "passed"
            return 0.0
        # With a quiz per synset, a worker who labelled all they could in the synsets they qualified for takes
        # the next synset's quiz ("next"); none left, or failing it, ends their work but not their pass.
        if log.quiz == "next" and reply.status_code == 409:
            log.quiz = "passed"
            raise _Stop("no work")
        if reply.status_code == 403 and "blocked" in reply.text:
            log.quiz, log.blocked_after = "blocked", log.hits
            raise _Stop("blocked")
        if reply.status_code == 409 and PAUSED in reply.text:
            return self._paused_wait(reply)
        if reply.status_code != 201:
            log.quiz = "error"
            raise _Stop(f"quiz refused ({reply.status_code}): {reply.text[:120]}")
        quiz = reply.json()
        items = [self._truth(item["synset"], item["thumbnail"]) for item in quiz["items"]]
        said = account.worker.answer_quiz(items)
        answers = {str(item["id"]): present for item, present in zip(quiz["items"], said, strict=True)}
        reply = self._post(client, f"/api/v1/quizzes/{quiz['id']}/submit/", headers, {"answers": answers})
        if reply.status_code != 200:
            log.quiz = "error"
            raise _Stop(f"quiz submit refused ({reply.status_code})")
        if not reply.json()["passed"]:
            if log.quiz == "next":
                log.quiz = "passed"
                raise _Stop("failed the next synset's quiz")
            log.quiz = "failed"
            raise _Stop("failed the quiz")
        log.quiz = "passed"
        return len(items) * account.worker.median_ms / 1000


def run_crowd(**kwargs) -> RunLog:
    """Run a crowd to the end (see :class:`CrowdRun` for the arguments)."""
    return CrowdRun(**kwargs).run()

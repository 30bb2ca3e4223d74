"""The box pipeline: leasing draw / quality / coverage tasks, submitting them, and each candidate's and box's
state machine (see boxes.md beside this package; the scheduler patterns are those of hits.py / scheduler.md).

* ``policy`` — the numbers (task sizes, stopping rule, rounds, limits);
* ``leasing`` — entering accepted candidates (``box_jobs_enter``), leases and their expiry, ``box_task_next``;
* ``submit`` — ``box_task_submit`` (parsing, idempotency, answers, ledger), ``parse_box``, gold boxes;
* ``states`` — the state machines run by a submit: quality → box state and merging, coverage → image state.
"""

from .leasing import box_jobs_enter, box_jobs_enter_request, box_task_next, box_task_release, box_tasks_expire
from .policy import (
    ABSENT_TO_DROP,
    CONFIDENCE,
    DRAW_PER_TASK,
    ENTER_BATCH,
    ENTER_EVERY_SECONDS,
    MAX_BOXES_PER_IMAGE,
    MAX_ROUNDS,
    MAX_VOTES,
    MERGE_IOU,
    MIN_VOTES,
    PRIOR_YES,
    VERIFY_PER_TASK,
)
from .submit import BoxSubmitResult, box_gold_create, box_task_submit, parse_box

__all__ = [
    "ABSENT_TO_DROP",
    "CONFIDENCE",
    "DRAW_PER_TASK",
    "ENTER_BATCH",
    "ENTER_EVERY_SECONDS",
    "MAX_BOXES_PER_IMAGE",
    "MAX_ROUNDS",
    "MAX_VOTES",
    "MERGE_IOU",
    "MIN_VOTES",
    "PRIOR_YES",
    "VERIFY_PER_TASK",
    "BoxSubmitResult",
    "box_gold_create",
    "box_jobs_enter",
    "box_jobs_enter_request",
    "box_task_next",
    "box_task_release",
    "box_task_submit",
    "box_tasks_expire",
    "parse_box",
]

"""The crowd simulator: simulated workers (workers.py) driven through the real REST API (runner.py).
Pure: no Django imports here; annotation/services/demo.py connects it to the database and the demo truth."""

from annotation.simulator.runner import Account, CrowdRun, RunLog, WorkerLog, run_crowd
from annotation.simulator.workers import (
    DEFAULT_MIX,
    KINDS,
    SPAMMERS,
    Blackboard,
    ItemTruth,
    SimWorker,
    crowd_make,
    kind_counts,
    parse_mix,
)

__all__ = [
    "DEFAULT_MIX",
    "KINDS",
    "SPAMMERS",
    "Account",
    "Blackboard",
    "CrowdRun",
    "ItemTruth",
    "RunLog",
    "SimWorker",
    "WorkerLog",
    "crowd_make",
    "kind_counts",
    "parse_mix",
    "run_crowd",
]

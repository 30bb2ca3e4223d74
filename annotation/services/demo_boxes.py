"""The crowd simulator on the box pipeline, database side: where the instances of each demo candidate are
(from DATA_DIR/demo/truth.jsonl), a simulated crowd driven through the box REST API (draw → quality →
coverage, annotation/simulator/box_runner.py) and the report of the final boxes against that truth.

Report (``box_simulation_report``):

* ``images``: the campaign's box jobs with a truth record, by state; ``with_instances`` of them show at
  least one instance of their synset (the others entered through a wrong presence label);
* ``fully_covered``: share of images with instances where every instance is matched one-to-one by a final
  (accepted) box at IoU ≥ 0.5 (PASCAL-style greedy matching, ``annotation.boxes.match_boxes``);
* ``boxes_iou_050``: share of final boxes whose best IoU with an instance is ≥ 0.5; ``mean_iou``: the mean
  of that best IoU over all final boxes;
* ``boxes_per_instance``: final boxes at IoU ≥ 0.5 per covered instance; ``duplicates``: final boxes on an
  instance that another final box already matches (the pipeline merges these: the target is 0);
* ``worker_seconds_per_box``: every box answer's response time (draw, quality, coverage; the quiz not
  included) over the number of final boxes, with the split per task type.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Sum

from annotation import demo_images
from annotation.boxes import iou_matrix, match_boxes
from annotation.models import Box, BoxAnswer, BoxJob, BoxTask, Campaign, Candidate
from annotation.selectors import demo as demo_selectors
from annotation.selectors.images import image_urls
from annotation.services.boxes import box_jobs_enter
from annotation.services.demo import live_server, simulation_accounts
from annotation.services.refit import campaign_counters_recount
from annotation.simulator.box_runner import BoxRunLog, run_boxes
from annotation.simulator.drawing import BoxTruth
from annotation.simulator.workers import DEFAULT_MIX, crowd_make

# The targets (ILSVRC's reported figures): on the simulator's default crowd.
TARGETS = {"fully_covered": 0.979, "boxes_iou_050": 0.992, "mean_iou": 0.85, "duplicates": 0}


def box_truth_by_candidate(*, campaign: Campaign) -> dict[int, BoxTruth]:
    """Candidate id → its image's instances of the candidate's synset (and hyponyms) and other shapes."""
    records = demo_selectors.demo_truth_records()
    truth = demo_selectors.demo_truth_by_candidate(synset_ids=demo_selectors.campaign_synset_ids(campaign))
    sizes = dict(Candidate.objects.filter(id__in=list(truth)).values_list("id", "image__width"))
    heights = dict(Candidate.objects.filter(id__in=list(truth)).values_list("id", "image__height"))
    out = {}
    for candidate_id, item in truth.items():
        wanted = demo_images.descendants(item.query_wnid)
        boxes = records[item.key].get("boxes", [])
        coords = [(b["wnid"], (b["x1"], b["y1"], b["x2"], b["y2"])) for b in boxes]
        out[candidate_id] = BoxTruth(
            key=item.key,
            width=sizes[candidate_id],
            height=heights[candidate_id],
            instances=tuple(c for w, c in coords if w in wanted),
            others=tuple(c for w, c in coords if w not in wanted),
        )
    return out


def box_oracle(*, campaign: Campaign) -> dict[tuple[str, str], BoxTruth]:
    """(synset wnid, thumbnail URL path) → BoxTruth: what a simulated worker sees in a box task."""
    truth = box_truth_by_candidate(campaign=campaign)
    oracle = {}
    for candidate in Candidate.objects.filter(id__in=list(truth)).select_related("image", "synset"):
        oracle[(candidate.synset.wnid, image_urls(candidate.image)["thumbnail"])] = truth[candidate.id]
    return oracle


DEMO_TRUTH_MODEL_VERSION = "demo-truth"  # labels the box simulation's set-up took from the demo's truth


def accept_true_positives(*, campaign: Campaign) -> int:
    """Simulation set-up without a presence run: mark the campaign's demo candidates that truly show their
    synset accepted (as a perfect presence stage would), so they enter the box pipeline. Returns how many. Their
    model version says where the label came from (DEMO_TRUTH_MODEL_VERSION): an export's datasheet lists it
    among the model versions, rather than showing labels with no votes and no source."""
    truth = demo_selectors.demo_truth_by_candidate(synset_ids=demo_selectors.campaign_synset_ids(campaign))
    ids = [c for c, item in truth.items() if item.positive]
    accepted = Candidate.objects.filter(id__in=ids).update(
        state=Candidate.State.ACCEPTED, model_version=DEMO_TRUTH_MODEL_VERSION
    )
    campaign_counters_recount(campaign=campaign)  # states moved outside consensus, which keeps the counters
    return accepted


@dataclass
class BoxSimulationOptions:
    workers: int = 60
    mix: str = DEFAULT_MIX
    seed: int = 1
    max_tasks: int | None = None
    prefix: str = ""


def box_simulate(*, campaign: Campaign, options: BoxSimulationOptions, base_url: str | None = None) -> dict:
    """Run a simulated crowd through the box pipeline of a running, box-enabled campaign (against
    ``base_url`` or an in-process server) until nobody gets work; return the report."""
    crowd = crowd_make(options.workers, options.mix, seed=options.seed)
    prefix = options.prefix or f"box{campaign.id}s{options.seed}-{int(time.time()) % 100000}"
    accounts = simulation_accounts(crowd=crowd, prefix=prefix)
    presence = demo_selectors.demo_oracle(campaign=campaign)
    boxes = box_oracle(campaign=campaign)
    box_jobs_enter(campaign=campaign)
    kwargs = {
        "campaign_id": campaign.id,
        "accounts": accounts,
        "oracle": lambda wnid, path: presence.get((wnid, path)),
        "box_oracle": lambda wnid, path: boxes.get((wnid, path)),
        "seed": options.seed,
        "max_tasks": options.max_tasks,
    }
    if base_url:
        log = run_boxes(base_url=base_url, **kwargs)
    else:
        with live_server() as url:
            log = run_boxes(base_url=url, **kwargs)
    return box_simulation_report(campaign=campaign, log=log, users=[a.username for a in accounts])


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 6) if b else None


def box_simulation_report(*, campaign: Campaign, log: BoxRunLog | None = None, users: list[str] | None = None) -> dict:
    """Final boxes of the campaign against the demo truth (see the module docstring for each figure)."""
    truth = box_truth_by_candidate(campaign=campaign)
    jobs = list(
        BoxJob.objects.filter(campaign=campaign, candidate_id__in=list(truth))
        .exclude(state=BoxJob.State.WITHDRAWN)
        .values_list("id", "candidate_id", "state", "round")
    )
    final: dict[int, list[tuple[int, int, int, int]]] = {j: [] for j, *_ in jobs}
    rows = Box.objects.filter(job_id__in=list(final), state=Box.State.ACCEPTED).values_list("job_id", "x1", "y1", "x2",
                                                                                            "y2")  # fmt: skip
    for job_id, *coords in rows:
        final[job_id].append(tuple(coords))
    states = Counter(state for _, _, state, _ in jobs)
    with_instances = covered = instances = matched = duplicates = n_boxes = good = 0
    ious: list[float] = []
    uncovered: list[dict] = []
    for job_id, candidate_id, state, rnd in jobs:
        t = truth[candidate_id]
        pred = np.array(final[job_id], dtype=float).reshape(-1, 4)
        real = np.array(t.instances, dtype=float).reshape(-1, 4)
        n_boxes += len(pred)
        if len(pred) and len(real):
            best = iou_matrix(pred, real).max(axis=1)
            ious += best.tolist()
            good += int((best >= 0.5).sum())
        elif len(pred):
            ious += [0.0] * len(pred)
        if not len(real):
            continue
        with_instances += 1
        instances += len(real)
        m = match_boxes(pred, real)
        matched += len(m.pairs)
        duplicates += m.duplicates
        if len(m.pairs) == len(real):
            covered += 1
        elif len(uncovered) < 20:
            uncovered.append({"image": t.key, "state": state, "round": rnd, "instances": len(real),
                              "boxed": len(m.pairs)})  # fmt: skip
    answers = BoxAnswer.objects.filter(item__task__campaign=campaign)
    ms_by_kind = {k: v or 0 for k, v in answers.values_list("kind").annotate(ms=Sum("response_ms")).order_by()}
    ms_total = sum(ms_by_kind.values())
    draw_ms = list(answers.filter(answer=BoxAnswer.Answer.BOX).values_list("response_ms", flat=True))
    figures = {
        "fully_covered": _ratio(covered, with_instances),
        "boxes_iou_050": _ratio(good, n_boxes),
        "mean_iou": round(statistics.fmean(ious), 6) if ious else None,
        "duplicates": duplicates,
    }
    report = {
        "campaign": campaign.id,
        "images": {"total": len(jobs), "with_instances": with_instances, "states": dict(states)},
        "instances": instances,
        "final_boxes": n_boxes,
        **figures,
        "instances_boxed": _ratio(matched, instances),
        "boxes_per_instance": _ratio(matched + duplicates, matched),
        "boxes_drawn": Box.objects.filter(job__campaign=campaign, drawn_by__isnull=False).count(),
        "tasks": dict(
            Counter(BoxTask.objects.filter(campaign=campaign, status="submitted").values_list("kind", flat=True))
        ),
        "worker_seconds_per_box": _ratio(ms_total / 1000, n_boxes),
        "worker_seconds_per_box_by_kind": {k: _ratio(v / 1000, n_boxes) for k, v in sorted(ms_by_kind.items())},
        "median_draw_seconds": round(statistics.median(draw_ms) / 1000, 2) if draw_ms else None,
        "targets": {k: {"target": v, "met": _met(k, figures[k], v)} for k, v in TARGETS.items()},
        "not_covered_examples": uncovered,
        "database": connection.vendor,
    }
    if log is not None:
        report["run"] = {
            "wall_seconds": round(log.wall_seconds, 2),
            "passes": log.passes,
            "quiz": dict(log.quiz),
            "workers_at_work": dict(log.workers_by_kind),
            "answers": dict(sorted(log.answers.items())),
            "errors": log.errors[:10],
        }
    if users is not None:
        report["workers"] = len(users)
        report["workers_blocked"] = User.objects.filter(username__in=users, worker_profile__blocked=True).count()
    return report


def _met(name: str, value, target) -> bool:
    if value is None:
        return False
    return value <= target if name == "duplicates" else value >= target


def format_box_report(r: dict) -> str:
    """The report as a table."""

    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}%"

    lines = [
        f"Campaign {r['campaign']}: box pipeline against the demo truth ({r['database']})",
        f"images {r['images']['total']} ({r['images']['with_instances']} with instances), states "
        f"{r['images']['states']}; instances {r['instances']}; final boxes {r['final_boxes']} "
        f"(drawn {r['boxes_drawn']}); tasks {r['tasks']}",
        "",
        f"{'figure':<28}{'value':>12}{'target':>12}{'met':>6}",
        f"{'images fully covered':<28}{pct(r['fully_covered']):>12}{'≥ 97.90%':>12}{_yes(r, 'fully_covered'):>6}",
        f"{'final boxes IoU ≥ 0.5':<28}{pct(r['boxes_iou_050']):>12}{'≥ 99.20%':>12}{_yes(r, 'boxes_iou_050'):>6}",
        f"{'mean IoU of final boxes':<28}{r['mean_iou'] or 0:>12.4f}{'≥ 0.85':>12}{_yes(r, 'mean_iou'):>6}",
        f"{'duplicate boxes':<28}{r['duplicates']:>12}{'0':>12}{_yes(r, 'duplicates'):>6}",
        f"{'boxes per instance':<28}{r['boxes_per_instance'] or 0:>12.4f}",
        f"{'instances boxed':<28}{pct(r['instances_boxed']):>12}",
        f"{'worker-seconds per box':<28}{r['worker_seconds_per_box'] or 0:>12.1f}{'ILSVRC ~42':>12}",
        f"{'  of which':<28}"
        + ", ".join(f"{kind} {seconds or 0:.1f}" for kind, seconds in r["worker_seconds_per_box_by_kind"].items()),
        f"{'median draw seconds':<28}{r['median_draw_seconds'] or 0:>12.1f}",
    ]
    if "run" in r:
        lines.append(
            f"run: {r['run']['wall_seconds']} s wall, quiz {r['run']['quiz']}, errors {r['run']['errors'][:2]}"
        )
    return "\n".join(lines)


def _yes(r: dict, name: str) -> str:
    return "yes" if r["targets"][name]["met"] else "NO"

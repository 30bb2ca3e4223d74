"""What a worker sees of a box task. Gold boxes look like any other box: items are ids, image URLs, the
image's displayed size and boxes in its pixels."""

from annotation.models import Box, BoxJob, BoxTask, BoxTaskItem, Candidate
from annotation.selectors.hits import display_urls, synset_payload


def _image(image) -> dict:
    return {**display_urls(image), "width": image.width, "height": image.height}


def accepted_boxes(*, job_ids: list[int]) -> dict[int, list[list[int]]]:
    """The accepted (final) boxes of each job, as [x1, y1, x2, y2] in displayed-image pixels."""
    out: dict[int, list[list[int]]] = {j: [] for j in job_ids}
    rows = Box.objects.filter(job_id__in=job_ids, state=Box.State.ACCEPTED).order_by("id")
    for job_id, *coords in rows.values_list("job_id", "x1", "y1", "x2", "y2"):
        out[job_id].append(coords)
    return out


def box_task_payload(*, task: BoxTask) -> dict:
    items = list(
        BoxTaskItem.objects.filter(task=task)
        .select_related("job__candidate__image", "box__candidate__image")
        .order_by("position")
    )
    shown = accepted_boxes(job_ids=[i.job_id for i in items if i.job_id])
    rows = []
    for item in items:
        if item.box_id:
            box = item.box
            rows.append({"id": item.id, "image": _image(box.candidate.image), "box": list(box.coords)})
        else:
            rows.append({"id": item.id, "image": _image(item.job.candidate.image), "boxes": shown[item.job_id]})
    return {
        "id": task.id,
        "kind": task.kind,
        "campaign": task.campaign_id,
        "expires_at": task.expires_at,
        "synset": synset_payload(task.synset),
        "items": rows,
    }


def box_job_summary(*, campaign_id: int) -> dict[str, int]:
    """The box pipeline of a campaign at a glance: how many images are in each state (every state listed,
    0 when none), ``images`` in all, and ``boxes``, the accepted (final) boxes of those images that are still
    accepted for their synset — the boxes an export would carry (a finished image later rejected, by a
    researcher's override or by re-evaluation, keeps its job's state but its boxes no longer count)."""
    from django.db.models import Count

    rows = BoxJob.objects.filter(campaign_id=campaign_id).values("state").annotate(n=Count("id"))
    counts = {state: 0 for state in BoxJob.State.values} | {row["state"]: row["n"] for row in rows}
    counts["images"] = sum(counts.values())
    counts["boxes"] = (
        Box.objects.filter(
            job__campaign_id=campaign_id, state=Box.State.ACCEPTED, job__candidate__state=Candidate.State.ACCEPTED
        ).count()
        if counts["images"]
        else 0
    )
    return counts

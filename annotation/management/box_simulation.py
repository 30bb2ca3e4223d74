"""``simulate_crowd --boxes``: the box pipeline's simulation (annotation/services/demo_boxes.py), kept out
of the presence command's module."""

import json

from django.core.management.base import CommandError

from annotation.selectors.demo import DemoTruthMissing
from annotation.services import demo_boxes


def simulate_boxes(command, campaign, o: dict) -> None:
    if not campaign.boxes_enabled:
        raise CommandError(
            f"Campaign {campaign.id} does not collect boxes: turn on “Collect bounding boxes” in its policy on the "
            f'dashboard, or PATCH /api/v1/campaigns/{campaign.id}/ with {{"boxes_enabled": true}}.'
        )
    options = demo_boxes.BoxSimulationOptions(
        workers=o["workers"], mix=o["mix"], seed=o["seed"], max_tasks=o["hits"], prefix=o["prefix"]
    )
    try:
        if o["accept_truth"]:
            demo_boxes.accept_true_positives(campaign=campaign)
        report = demo_boxes.box_simulate(campaign=campaign, options=options, base_url=o["base_url"])
    except DemoTruthMissing as error:
        raise CommandError(str(error)) from None
    command.stdout.write(json.dumps(report, indent=2) if o["json"] else demo_boxes.format_box_report(report))

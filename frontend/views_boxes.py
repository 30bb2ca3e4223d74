"""Box work pages: draw (canvas), quality and coverage (fast grids). The pages only call the REST API."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from annotation.models import Campaign

VERIFY_QUESTIONS = {
    "quality": "Is the box tight around one {name}?",
    "coverage": "Is every {name} in the image boxed?",
}


@login_required
def box_draw(request, campaign_id: int):
    campaign = get_object_or_404(Campaign, id=campaign_id)
    look_again = settings.NEXT_HIT_RETRY_SECONDS  # after "no work right now"
    return render(request, "frontend/box_draw.html", {"campaign": campaign, "look_again": look_again})


@login_required
def box_verify(request, campaign_id: int, kind: str):
    if kind not in VERIFY_QUESTIONS:
        raise Http404(f"There is no box task “{kind}”.")
    campaign = get_object_or_404(Campaign, id=campaign_id)
    look_again = settings.NEXT_HIT_RETRY_SECONDS
    return render(request, "frontend/box_verify.html", {"campaign": campaign, "kind": kind, "look_again": look_again})

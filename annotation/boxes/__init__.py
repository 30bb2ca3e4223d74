"""Box math for Synsight: pure numpy, no Django (see AGGREGATION.md in this folder).

* ``iou_matrix``, ``small_object_threshold`` — geometry (boxes are x1, y1 inclusive, x2, y2 exclusive).
* ``aggregate_boxes`` — merge boxes of one image drawn by different workers, weighted by reliability.
* ``worker_reliability`` — reliability from agreement when no other estimate exists.
* ``match_boxes`` / ``Score`` — precision, recall, F1 at IoU >= 0.5 and mean IoU against truth.
"""

from .aggregate import Aggregate, aggregate_boxes, weighted_median, worker_reliability
from .evaluate import MATCH_IOU, Match, Score, match_boxes
from .geometry import areas, as_boxes, iou_matrix, small_object_threshold

__all__ = [
    "MATCH_IOU",
    "Aggregate",
    "Match",
    "Score",
    "aggregate_boxes",
    "areas",
    "as_boxes",
    "iou_matrix",
    "match_boxes",
    "small_object_threshold",
    "weighted_median",
    "worker_reliability",
]

"""Reads of the annotation app, one module per topic; import them from here."""

from annotation.selectors.hits import hit_may_come, hit_payload, quiz_payload, worker_campaigns, worker_stats

__all__ = ["hit_may_come", "hit_payload", "quiz_payload", "worker_campaigns", "worker_stats"]

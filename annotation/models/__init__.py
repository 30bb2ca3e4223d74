"""Annotation models, one module per topic; import them from here."""

from annotation.models.boxes import Box, BoxAnswer, BoxJob, BoxTask, BoxTaskItem
from annotation.models.campaigns import Campaign, CampaignSynset, GoldItem, Hit, HitItem, QuizAttempt, Vote
from annotation.models.images import Candidate, Image, ImportBatch, ImportItem
from annotation.models.rollups import (
    ActivityBucket,
    ActivityBucketWorker,
    AuditJudgement,
    CampaignWorker,
    DecisionOverride,
    SynsetActivity,
    WorkerAction,
)

__all__ = [
    "ActivityBucket",
    "ActivityBucketWorker",
    "AuditJudgement",
    "Box",
    "BoxAnswer",
    "BoxJob",
    "BoxTask",
    "BoxTaskItem",
    "Campaign",
    "CampaignSynset",
    "CampaignWorker",
    "Candidate",
    "DecisionOverride",
    "GoldItem",
    "Hit",
    "HitItem",
    "Image",
    "ImportBatch",
    "ImportItem",
    "QuizAttempt",
    "SynsetActivity",
    "Vote",
    "WorkerAction",
]

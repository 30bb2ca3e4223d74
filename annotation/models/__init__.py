"""Annotation models, one module per topic; import them from here."""

from annotation.models.boxes import Box, BoxAnswer, BoxJob, BoxTask, BoxTaskItem
from annotation.models.campaigns import Campaign, CampaignSynset, GoldItem, Hit, HitItem, QuizAttempt, Vote
from annotation.models.images import Candidate, Image, ImportBatch, ImportItem

__all__ = [
    "Box",
    "BoxAnswer",
    "BoxJob",
    "BoxTask",
    "BoxTaskItem",
    "Campaign",
    "CampaignSynset",
    "Candidate",
    "GoldItem",
    "Hit",
    "HitItem",
    "Image",
    "ImportBatch",
    "ImportItem",
    "QuizAttempt",
    "Vote",
]

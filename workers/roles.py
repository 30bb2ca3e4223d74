"""The three roles of Synsight, as Django groups: crowd workers label, researchers run campaigns,
admins publish datasets and manage workers."""

from enum import StrEnum


class Role(StrEnum):
    WORKER = "worker"
    RESEARCHER = "researcher"
    ADMIN = "admin"

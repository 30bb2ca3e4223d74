"""What HITs and box tasks share as leases: a page that closes gives its lease back, and coming back restores it.

A lease (``Hit``, ``BoxTask``: ``worker``, ``status``, ``created``, ``expires_at``) is the worker's until it ends,
when the expiry jobs give its images back to the queue. A page that closes (or reloads) sends its goodbye
(``give_back``): the lease then ends RELEASE_GRACE_SECONDS from now, so a closed tab's images return to the queue
within a minute instead of at the lease's end (15 minutes by default). A reload asks for its work again within
that minute and gets the whole lease back (``restored``), its kept answers with it."""

from datetime import timedelta

from django.contrib.auth.models import User
from django.db import models
from django.utils import timezone

from annotation.errors import NotFound

RELEASE_GRACE_SECONDS = 60


def give_back(model: type[models.Model], *, worker: User, lease_id: int, missing: str) -> bool:
    """Shorten the worker's open lease to RELEASE_GRACE_SECONDS from now. True if it was shortened; one already
    submitted, expired or about to expire is left as it is (a page's goodbye may arrive after its submit).
    NotFound(``missing``) when it is not the worker's."""
    if not model.objects.filter(id=lease_id, worker=worker).exists():
        raise NotFound(missing)
    grace_end = timezone.now() + timedelta(seconds=RELEASE_GRACE_SECONDS)
    return bool(model.objects.filter(id=lease_id, status="open", expires_at__gt=grace_end).update(expires_at=grace_end))


def restored(lease: models.Model, *, lease_seconds: int, now) -> bool:
    """The worker came back to their open lease: one its page gave back is whole again (counted from its
    creation). False when it ran out meanwhile (the expiry job took it)."""
    whole = lease.created + timedelta(seconds=lease_seconds)
    if lease.expires_at > whole - timedelta(seconds=1):  # never given back (``created`` is a few ms after the lease)
        return True
    if not type(lease).objects.filter(id=lease.id, status="open", expires_at__gt=now).update(expires_at=whole):
        return False
    lease.expires_at = whole
    return True

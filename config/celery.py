import logging
import os

import kombu.exceptions
from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("synsight")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class QueuedAfterCommit(Task):
    """A task queued once its data are committed (transaction.on_commit) and whose work a periodic job also
    does: a broker outage while queueing it is logged, not raised. Raising there would turn a stored submit
    into an error answer (the client's retry would only replay it) and the work is picked up later anyway."""

    def apply_async(self, *args, **kwargs):
        try:
            return super().apply_async(*args, **kwargs)
        except kombu.exceptions.OperationalError as error:
            logging.getLogger(__name__).warning(
                "Could not queue %s (%s); the periodic sweep will do its work.", self.name, error
            )
            return None

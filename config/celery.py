import logging
import os

import kombu.exceptions
from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("synsight")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def eager_set(on: bool) -> None:
    """Run tasks in-process (``on``) or through the broker from now on. Celery looks a namespaced setting up
    under its prefixed name first (CELERY_TASK_ALWAYS_EAGER, which Django's settings define) in 5.6 and under
    the plain one in 5.7: both are set, so the change holds whichever it reads."""
    app.conf["CELERY_TASK_ALWAYS_EAGER"] = on
    app.conf["task_always_eager"] = on


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

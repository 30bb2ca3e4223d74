import uuid

import pytest
from django.core.management import call_command

from config.celery import app as celery_app


@pytest.fixture(autouse=True)
def celery_eager(settings):
    """Tasks run in-process, for real, inside the test's transaction. Tests that need a real Celery worker
    on Redis (the integration tests) start one and switch this off explicitly."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER


@pytest.fixture(autouse=True)
def isolated_cache(settings):
    """Each test gets its own cache namespace (also on the shared Redis in CI), so rate-limit counters and
    job locks never leak between tests or between test runs on the same server."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Every test database starts with the whole WordNet 3.0 noun hierarchy, imported once per run through
    the real command (tests run in transactions that roll back, so it stays intact)."""
    with django_db_blocker.unblock():
        call_command("import_wordnet", "--all", "--no-progress")

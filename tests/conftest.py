import os
import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from config.celery import eager_set
from tests.wordnet_snapshot import wordnet_into_test_database


@pytest.fixture(autouse=True)
def celery_eager(settings):
    """Tasks run in-process, for real, inside the test's transaction. Tests that need a real Celery worker
    on Redis (the integration tests) start one and switch this off explicitly."""
    eager_set(True)
    yield
    eager_set(settings.CELERY_TASK_ALWAYS_EAGER)


@pytest.fixture(autouse=True)
def isolated_cache(settings):
    """Each test gets its own cache namespace (also on the shared Redis in CI), so rate-limit counters and
    job locks never leak between tests or between test runs on the same server."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}


@pytest.fixture(autouse=True)
def cheap_password_hashing(settings):
    """Django's advice for test suites: a cheap hasher. The configured one, Argon2id, costs ~0.2 s of CPU and
    100 MB per password, and the tests create and sign in thousands of accounts (a simulated crowd alone, dozens).
    tests/test_security.py checks the configured hashers themselves."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker, tmp_path_factory):
    """Every test database starts with the whole WordNet 3.0 noun hierarchy, imported once per run through
    the real command and copied into the other workers' databases (tests/wordnet_snapshot.py); tests run in
    transactions that roll back, so it stays intact."""
    in_xdist = "PYTEST_XDIST_WORKER" in os.environ
    shared = tmp_path_factory.getbasetemp().parent / "wordnet-snapshot" if in_xdist else None
    with django_db_blocker.unblock():
        wordnet_into_test_database(shared)


@pytest.fixture
def back_to_latest(transactional_db):
    """The test database leaves a migration test at the latest migrations again, for the tests after it."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

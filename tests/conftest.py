import pytest
from django.core.management import call_command


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Every test database starts with the whole WordNet 3.0 noun hierarchy, imported once per run through
    the real command (tests run in transactions that roll back, so it stays intact)."""
    with django_db_blocker.unblock():
        call_command("import_wordnet", "--all", "--no-progress")

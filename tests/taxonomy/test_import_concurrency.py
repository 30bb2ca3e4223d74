"""Two WordNet imports at once (``make demo`` and ``make test`` side by side, or two containers starting): the
second waits for the first and then creates only what the first did not."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from taxonomy.models import Synset, SynsetClosure, SynsetEdge
from tests.concurrency import another_connection_waits, while_held_open

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="two writers at once: PostgreSQL (SQLite runs one at a time)"
    ),
]


def _import(*roots: str) -> str:
    out = StringIO()
    options = [option for root in roots for option in ("--root", root)]
    call_command("import_wordnet", *options, "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def _empty_taxonomy() -> None:
    with connection.cursor() as cursor:
        tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in (SynsetClosure, SynsetEdge, Synset))
        cursor.execute(f"TRUNCATE {tables} CASCADE")


def _created(summary: str) -> int:
    return int(summary.split()[1])


def test_an_import_while_the_same_import_is_uncommitted_waits_and_creates_nothing():
    """The second run read the synsets before the first committed, then inserted the same ones: IntegrityError."""
    _empty_taxonomy()

    first, second = while_held_open(
        lambda: _import("dog.n.01"), lambda: _import("dog.n.01"), until=another_connection_waits
    )

    assert isinstance(first, str), first
    assert isinstance(second, str), second
    assert _created(first) == 204  # dog.n.01, its 189 descendants and 14 ancestors
    assert second.startswith("Created 0 synsets and 0 is-a links. The database now holds 204 synsets")
    assert Synset.objects.count() == 204
    assert SynsetClosure.objects.filter(ancestor_id=2084071).count() == 189


def test_a_larger_import_while_a_smaller_one_is_uncommitted_waits_and_creates_only_the_rest():
    _empty_taxonomy()
    _import("dog.n.01", "canine.n.02")  # the expected totals, measured serially (dog.n.01 has a second parent)
    expected_synsets, expected_closure = Synset.objects.count(), SynsetClosure.objects.count()
    _empty_taxonomy()

    first, second = while_held_open(
        lambda: _import("dog.n.01"), lambda: _import("canine.n.02"), until=another_connection_waits
    )

    assert isinstance(first, str), first
    assert isinstance(second, str), second
    assert _created(first) == 204
    assert _created(second) == expected_synsets - 204
    assert (Synset.objects.count(), SynsetClosure.objects.count()) == (expected_synsets, expected_closure)

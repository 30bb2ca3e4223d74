"""Writes to the taxonomy: the WordNet import."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice

from django.db import connection, transaction

from taxonomy.models import Synset, SynsetClosure, SynsetEdge
from taxonomy.wordnet_source import NounGraph, depths, is_sensitive

# Rows per INSERT: large enough to amortise round trips, small enough for SQLite's variable limit.
BATCH_SIZE = 4000
# PostgreSQL advisory lock key that serialises imports ("WNIM" in ASCII; no other lock of ours uses it).
IMPORT_LOCK_KEY = 0x574E494D
# How long an import on SQLite waits for another writer (another import's transaction, ~15 s for --all) before
# SQLite's "database is locked": longer than the connection's usual 20 s (config/env.py), which a second
# import started while the first wrote all nouns could outwait.
SQLITE_IMPORT_WAIT_SECONDS = 600


@dataclass(frozen=True)
class ImportSummary:
    created_synsets: int
    created_links: int
    total_synsets: int
    total_links: int


def _batches(rows: Iterator, size: int = BATCH_SIZE) -> Iterator[list]:
    while batch := list(islice(rows, size)):
        yield batch


def _insert_rows(model, columns: tuple[str, ...], rows: Iterator[tuple]) -> None:
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    placeholders = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {table} ({names}) VALUES ({placeholders})"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY streams rows in one statement: ~5x faster than executemany on PostgreSQL.
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        for batch in _batches(rows, 20000):
            cursor.executemany(sql, batch)


def _lock_out_other_imports() -> None:
    """Two imports at once (``make demo`` beside ``make test``, two containers starting) each read the synsets
    present before the other had committed, then inserted the same rows: the second failed with an IntegrityError.
    A transaction-level advisory lock taken before that read makes the second wait until the first commits; it
    then reads what the first wrote and creates only the rest (nothing, for the same selection). The lock ends with
    the transaction, and with the connection if the process dies. SQLite needs none: its writers queue on BEGIN
    IMMEDIATE (config/env.py), so the second import's transaction starts after the first one's commit."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [IMPORT_LOCK_KEY])


@contextmanager
def _waiting_for_other_writers() -> Iterator[None]:
    """On SQLite, wait up to SQLITE_IMPORT_WAIT_SECONDS for another writer (see there), then the usual timeout."""
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    usual = connection.connection.execute("PRAGMA busy_timeout").fetchone()[0]
    connection.connection.execute(f"PRAGMA busy_timeout = {SQLITE_IMPORT_WAIT_SECONDS * 1000}")
    try:
        yield
    finally:
        connection.connection.execute(f"PRAGMA busy_timeout = {int(usual)}")


def wordnet_import(
    *,
    graph: NounGraph,
    closure: dict[int, dict[int, int]],
    offsets: set[int],
    progress: Callable[[int], None] = lambda n: None,
) -> ImportSummary:
    """Create the chosen synsets that are not in the database yet, with every is-a link and closure row
    that their arrival completes.

    Invariant kept by every run: the database holds exactly WordNet's is-a links and ancestor pairs among
    the synsets present. So a re-run creates nothing, and a larger selection later (``--all`` after
    ``--root dog.n.01``) adds only the new synsets and the links and pairs that touch them.
    ``progress`` is called with the number of synsets written per batch.
    """
    depth = depths(graph, closure)
    with _waiting_for_other_writers(), transaction.atomic():
        _lock_out_other_imports()
        existing = set(Synset.objects.values_list("id", flat=True))
        new = offsets - existing
        present = existing | new
        # Rows, not model instances (COPY on PostgreSQL): bulk_create took ~11 s of the 26 s a whole import writes.
        synsets = (
            (
                o,
                graph.synsets[o].name,
                graph.synsets[o].words,
                graph.synsets[o].gloss,
                graph.synsets[o].lexname,
                depth[o],
                is_sensitive(o, closure[o]),
            )
            for o in sorted(new)
        )
        for batch in _batches(synsets):
            _insert_rows(Synset, ("id", "name", "words", "gloss", "lexname", "depth", "sensitive"), iter(batch))
            progress(len(batch))
        edges = [
            (parent, child, kind)
            for child in sorted(present)
            for parent, kind in graph.parents[child]
            if parent in present and (child in new or parent in new)
        ]
        _insert_rows(SynsetEdge, ("parent_id", "child_id", "kind"), iter(edges))
        # The closure is ~9 rows per synset (743,241 for all nouns): plain executemany (COPY on PostgreSQL)
        # is several times faster than building model instances for bulk_create.
        rows = (
            (ancestor, descendant, distance)
            for descendant in sorted(present)
            for ancestor, distance in closure[descendant].items()
            if ancestor in present and (descendant in new or ancestor in new)
        )
        _insert_rows(SynsetClosure, ("ancestor_id", "descendant_id", "distance"), rows)
    if new and connection.vendor == "postgresql":
        # Statistics for the planner now, not whenever autovacuum comes by (if it is on at all): on tables never
        # ANALYZEd, PostgreSQL planned the dashboard's taxonomy queries as nested loops over the 743,241
        # closure rows (QA: a panel that never loaded).
        tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in (Synset, SynsetEdge, SynsetClosure))
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {tables}")
    return ImportSummary(
        created_synsets=len(new),
        created_links=len(edges),
        total_synsets=Synset.objects.count(),
        total_links=SynsetEdge.objects.count(),
    )

"""WordNet in every test database, imported once per run.

Each pytest-xdist worker has a test database of its own, and each needs the whole noun hierarchy (82,115
synsets, 743,241 closure rows). Importing it through ``import_wordnet --all`` took ~40 s alone and ~106 s per
worker when both workers of a 2-core run did it at once. Now the first worker to take the lock imports it
through the real command and saves the three tables' rows to a folder shared by the workers; the others load
those rows (PostgreSQL: binary ``COPY``; SQLite: an attached database file), which takes a few seconds.
"""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path

from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection

from taxonomy.models import Synset, SynsetClosure, SynsetEdge

MODELS = (Synset, SynsetEdge, SynsetClosure)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _table_and_columns(model) -> tuple[str, str]:
    quote = connection.ops.quote_name
    return quote(model._meta.db_table), ", ".join(quote(f.column) for f in model._meta.concrete_fields)


def _copy_tables(folder: Path, *, save: bool) -> None:
    """Save the three tables' rows to ``folder`` (``save``) or load them from it into this database."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for model in MODELS:
                table, columns = _table_and_columns(model)
                direction = "TO STDOUT" if save else "FROM STDIN"
                with (
                    open(folder / f"{model._meta.db_table}.copy", "wb" if save else "rb") as file,
                    cursor.cursor.copy(f"COPY {table} ({columns}) {direction} (FORMAT binary)") as copy,
                ):
                    if save:
                        for data in copy:
                            file.write(data)
                    else:
                        while data := file.read(1 << 20):
                            copy.write(data)
        else:
            cursor.execute("ATTACH DATABASE %s AS snapshot", [str(folder / "wordnet.sqlite3")])
            try:
                for model in MODELS:
                    table, columns = _table_and_columns(model)
                    cursor.execute(
                        f"CREATE TABLE snapshot.{table} AS SELECT {columns} FROM main.{table}"
                        if save
                        else f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM snapshot.{table}"
                    )
            finally:
                cursor.execute("DETACH DATABASE snapshot")
        if not save:
            for sql in connection.ops.sequence_reset_sql(no_style(), MODELS):
                cursor.execute(sql)


def wordnet_into_test_database(shared: Path | None) -> None:
    """Fill this worker's (empty, migrated) test database with all of WordNet. ``shared``: a folder every
    worker of the run sees (None without xdist: just import; the command is idempotent)."""
    if shared is None or Synset.objects.exists():  # no other workers, or a kept database (--reuse-db)
        call_command("import_wordnet", "--all", "--no-progress")
        return
    folder = shared / f"wordnet-{connection.vendor}"
    done = folder / "complete"
    shared.mkdir(parents=True, exist_ok=True)
    with _locked(shared / "wordnet.lock"):
        if done.exists():
            _copy_tables(folder, save=False)
            return
        call_command("import_wordnet", "--all", "--no-progress")
        folder.mkdir(exist_ok=True)
        _copy_tables(folder, save=True)
        done.touch()


PLANE_FIGURE_CIRCLE = 13873502  # circle.n.01, under plane_figure.n.01


def plane_figures_import() -> None:
    """WordNet's plane figures (the demo's shapes, under plane_figure.n.01) in a transactional test's database.
    pytest-django runs those tests last in each worker and each one flushes every table, WordNet's included, so a
    transactional test that needs synsets imports its own; a database that still has them is left as it is."""
    if not Synset.objects.filter(id=PLANE_FIGURE_CIRCLE).exists():
        call_command(
            "import_wordnet", "--root", "plane_figure.n.01", "--no-progress", stdout=StringIO(), stderr=StringIO()
        )

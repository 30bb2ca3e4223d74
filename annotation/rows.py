"""Model rows by primary key and plain inserts, without compiling the ORM's SQL on every call.

The crowd loop reads a campaign and inserts a HIT per request. Django compiles the same SELECT or INSERT from
scratch each time (about half of a small query's Python). On PostgreSQL these helpers write the statement
once per process and model, from the model's own fields, run it (prepared by psycopg after a few runs, see
config/env.py) and build the instance with ``Model.from_db`` / fill in the new primary key, as the ORM does.
Elsewhere (SQLite: its datetimes and decimals need the ORM's converters) they are the ORM calls themselves.

Not for models with save signals or custom ``save`` (neither is called) or fields whose values need database
converters on PostgreSQL (checked once per model; such a model goes through the ORM).

``column_in`` and ``fetch`` are for the written queries of the hot paths (the submit, the consensus update, the
spam screen): plain tuples on both databases.
"""

import functools

from django.db import connection
from django.db.models import Model


@functools.cache
def _select_sql(model: type[Model]) -> tuple[str, list[str]] | None:
    fields = model._meta.concrete_fields
    if any(
        f.get_db_converters(connection) or connection.ops.get_db_converters(f.get_col(f.model._meta.db_table))
        for f in fields
    ):
        return None
    q = connection.ops.quote_name
    columns = ", ".join(q(f.column) for f in fields)
    sql = f"SELECT {columns} FROM {q(model._meta.db_table)} WHERE {q(model._meta.pk.column)} = %s"
    return sql, [f.attname for f in fields]


def instance_by_id(model: type[Model], pk: int) -> Model | None:
    """``model.objects.filter(pk=pk).first()``: the row as an instance, or None."""
    statement = _select_sql(model) if connection.vendor == "postgresql" else None
    if statement is None:
        return model._default_manager.filter(pk=pk).first()
    sql, attnames = statement
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        row = cursor.fetchone()
    return None if row is None else model.from_db(connection.alias, attnames, row)


@functools.cache
def _insert_sql(model: type[Model]) -> tuple[str, list]:
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    q = connection.ops.quote_name
    sql = (
        f"INSERT INTO {q(model._meta.db_table)} ({', '.join(q(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {q(model._meta.pk.column)}"
    )
    return sql, fields


def instance_insert(instance: Model) -> Model:
    """``instance.save(force_insert=True)`` for a new instance with an automatic primary key, on PostgreSQL
    as one prepared INSERT … RETURNING; the instance gets its id and is marked saved."""
    if connection.vendor != "postgresql":
        instance.save(force_insert=True)
        return instance
    sql, fields = _insert_sql(type(instance))
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def column_in(column: str, values: list[int]) -> tuple[str, list]:
    """``column IN (%s, …)`` and its parameters for written SQL (PostgreSQL: ``column = ANY(%s)``, one array
    parameter, the same statement text for any number of values, see annotation/lookups.py); a condition that
    is never true for no values."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::bigint[])", [list(values)]
    if not values:
        return "1 = 0", []
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def fetch(sql: str, params: list) -> list[tuple]:
    """The rows of a written query."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()

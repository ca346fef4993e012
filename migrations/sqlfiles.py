"""Raw-SQL helpers for Alembic revisions.

Every revision runs its ``sql/schema/NNNN_*.sql`` file with :func:`run_schema` and ends
its upgrade with ``load_functions(op)``, which (re)loads every ``sql/functions/**/*.sql``
sorted by path. The ``sql`` directory is found next to the migrations directory that
Alembic is running from (``<repo>/sql`` in a checkout, ``payday/sql`` when installed).
"""

from __future__ import annotations

from pathlib import Path

from alembic.operations import Operations


def sql_dir(op: Operations) -> Path:
    """The ``sql`` directory beside the running migrations directory."""
    script = op.get_context().script
    base = Path(script.dir) if script is not None else Path(__file__).resolve().parent
    return base.parent / "sql"


def execute_sql(op: Operations, text: str) -> None:
    """Run SQL text (several statements allowed) exactly as written.

    Online, it goes straight to the psycopg connection (simple query protocol), so
    neither SQLAlchemy bind parameters (``:name``) nor ``%`` placeholders are parsed.
    """
    context = op.get_context()
    if context.as_sql:
        op.execute(text)
        return
    assert context.connection is not None
    raw = context.connection.connection.driver_connection
    assert raw is not None, "no DBAPI connection"
    raw.execute(text)


def run_sql_file(op: Operations, path: Path) -> None:
    """Run one SQL file; errors name the file."""
    try:
        execute_sql(op, path.read_text(encoding="utf-8"))
    except Exception as exc:
        exc.add_note(f"while running {path}")
        raise


def run_schema(op: Operations, name: str) -> None:
    """Run ``sql/schema/<name>``."""
    run_sql_file(op, sql_dir(op) / "schema" / name)


def function_files(op: Operations) -> list[Path]:
    """Every ``sql/functions/**/*.sql``, sorted by path (relative to ``sql/functions``)."""
    root = sql_dir(op) / "functions"
    return sorted(root.rglob("*.sql"), key=lambda p: p.relative_to(root).as_posix())


def load_functions(op: Operations) -> int:
    """(Re)load every function file with ``check_function_bodies = off``; returns how many."""
    execute_sql(op, "SET LOCAL check_function_bodies = off")
    files = function_files(op)
    for path in files:
        run_sql_file(op, path)
    return len(files)

"""Hardening: roles and privileges, an append-only ledger, paydays written only by functions.

sql/schema/0002_hardening.sql, then every function (always last). See docs/roles.md.

Downgrade removes exactly what 0002 added in this database: its triggers and trigger
functions, payday.reversals and payday.reverse_transfer(), every privilege granted to the
three roles, and the PUBLIC revocation (EXECUTE goes back to PUBLIC, the PostgreSQL
default; harmless because schema payday itself is not usable by PUBLIC). payday_sandbox
is dropped when it holds no operation (else it is kept: it is the sandbox processor's
memory of what it charged, and 0001's downgrade drops it anyway).

The roles payday_app, payday_runner and payday_readonly are left in place: roles are
cluster-wide, other databases of the cluster may use them, and DROP ROLE fails while
any database still grants them anything. Drop them by hand once no database uses them.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import execute_sql, load_functions, run_schema
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import execute_sql, load_functions, run_schema  # type: ignore[no-redef]

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DOWNGRADE = """
DROP FUNCTION IF EXISTS payday.reverse_transfer(bigint, text);
DROP TABLE IF EXISTS payday.reversals;
DROP FUNCTION IF EXISTS payday.paydays_written_by_functions() CASCADE;
DROP FUNCTION IF EXISTS payday.ledger_append_only() CASCADE;
DROP FUNCTION IF EXISTS payday.participants_balance_guard() CASCADE;

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['payday_app', 'payday_runner', 'payday_readonly'] LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA payday FROM %I', r);
            EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA payday FROM %I', r);
            EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA payday FROM %I', r);
            EXECUTE format('REVOKE ALL ON SCHEMA payday FROM %I', r);
            IF to_regnamespace('payday_sandbox') IS NOT NULL THEN
                EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA payday_sandbox FROM %I', r);
                EXECUTE format('REVOKE ALL ON SCHEMA payday_sandbox FROM %I', r);
            END IF;
        END IF;
    END LOOP;
    IF to_regclass('payday_sandbox.operations') IS NOT NULL
       AND NOT EXISTS (SELECT FROM payday_sandbox.operations) THEN
        DROP SCHEMA payday_sandbox CASCADE;
    END IF;
END
$$;

ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA payday TO PUBLIC;
"""


def upgrade() -> None:
    run_schema(op, "0002_hardening.sql")
    load_functions(op)  # always last: reload every sql/functions/**/*.sql


def downgrade() -> None:
    execute_sql(op, DOWNGRADE)

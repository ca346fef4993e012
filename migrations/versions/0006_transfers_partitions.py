"""Scale, fourth round: payday.transfers partitioned by ranges of id, one partition per
payday's tip transfers, which pay_tips() fills and indexes before attaching it.

sql/schema/0006_transfers_partitions.sql turns the existing table into the first partition
(``payday.transfers_ledger``, ids below 2^40: manual transfers, reversals and every
transfer written before), then every function is reloaded.

Downgrade puts every payday partition's rows back into that table and makes it the plain
``payday.transfers`` again, with the triggers, indexes and foreign keys of 0005; those rows
keep their ids (from 2^40), and a later upgrade gives them their partitions back. The
function files stay those of head, as after every downgrade: pay_tips() then inserts
into the plain table, as it did at 0005.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import execute_sql, load_functions, run_schema
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import execute_sql, load_functions, run_schema  # type: ignore[no-redef]

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# payday.reversals references whichever table payday.transfers is once the swap is done.
REVERSALS_FKS = """
ALTER TABLE payday.reversals
    ADD CONSTRAINT reversals_transfer_id_fkey FOREIGN KEY (transfer_id) REFERENCES payday.transfers (id),
    ADD CONSTRAINT reversals_reversal_id_fkey FOREIGN KEY (reversal_id) REFERENCES payday.transfers (id);
"""

DOWNGRADE = """
-- A partition that reversals reference cannot be detached: the foreign keys go first.
ALTER TABLE payday.reversals DROP CONSTRAINT reversals_transfer_id_fkey,
                             DROP CONSTRAINT reversals_reversal_id_fkey;

DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT i.inhrelid::regclass FROM pg_inherits i
                 WHERE i.inhparent = 'payday.transfers'::regclass ORDER BY i.inhrelid LOOP
        EXECUTE format('ALTER TABLE payday.transfers DETACH PARTITION %s', part);
        IF part <> 'payday.transfers_ledger'::regclass THEN
            EXECUTE format('INSERT INTO payday.transfers_ledger SELECT * FROM %s ORDER BY id', part);
            EXECUTE format('DROP TABLE %s', part);
        END IF;
    END LOOP;
END
$$;

ALTER SEQUENCE payday.transfers_id_seq OWNED BY payday.transfers_ledger.id;
ALTER SEQUENCE payday.transfers_id_seq NO MAXVALUE;
ALTER TABLE payday.transfers RENAME TO transfers_partitioned;
ALTER TABLE payday.transfers_ledger RENAME TO transfers;
"""

DOWNGRADE_AFTER_VIEWS = """
DROP TABLE payday.transfers_partitioned;

ALTER INDEX payday.transfers_ledger_pkey RENAME TO transfers_pkey;
ALTER INDEX payday.transfers_ledger_tipper_idx RENAME TO transfers_tipper_idx;
ALTER INDEX payday.transfers_ledger_tippee_idx RENAME TO transfers_tippee_idx;
ALTER INDEX payday.transfers_ledger_payday_idx RENAME TO transfers_payday_idx;
ALTER TRIGGER transfers_ledger_no_truncate ON payday.transfers RENAME TO transfers_no_truncate;
CREATE TRIGGER transfers_append_only
    BEFORE UPDATE OR DELETE ON payday.transfers
    FOR EACH ROW EXECUTE FUNCTION payday.ledger_append_only('tipper,tippee');
CREATE TRIGGER transfers_references_insert
    AFTER INSERT ON payday.transfers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    WHEN (current_setting('payday.tip_transfers_xact', true) IS DISTINCT FROM pg_current_xact_id()::text)
    EXECUTE FUNCTION payday.transfers_references_exist();
CREATE TRIGGER transfers_references_update
    AFTER UPDATE ON payday.transfers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION payday.transfers_references_exist();
COMMENT ON TABLE payday.transfers IS
    'Money moved between two participants. Written only by payday functions.';
""" + REVERSALS_FKS


# Views read payday.transfers by oid: their definitions are kept before the table is
# replaced (pg_get_viewdef qualifies every name under this search_path) and restated after,
# when the name means the new table.
KEEP_VIEWS = """
SET LOCAL search_path = pg_catalog;
CREATE TEMPORARY TABLE transfers_views ON COMMIT DROP AS
SELECT DISTINCT v.oid::regclass::text AS name, pg_get_viewdef(v.oid) AS definition
  FROM pg_depend d
  JOIN pg_rewrite r ON r.oid = d.objid
  JOIN pg_class v ON v.oid = r.ev_class
 WHERE d.refobjid = 'payday.transfers'::regclass AND v.oid <> d.refobjid;
"""

RESTATE_VIEWS = """
DO $$
DECLARE
    v record;
BEGIN
    FOR v IN SELECT name, definition FROM pg_temp.transfers_views LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %s AS %s', v.name, v.definition);
    END LOOP;
END
$$;
RESET search_path;
"""

# Tip transfers that came back from 0005 (see the schema file) become partitions again;
# then payday.reversals references the partitioned table (all of the ledger is in it now).
ATTACH_RETURNED = """
SELECT payday.attach_tip_transfers(substring(c.relname FROM '^transfers_payday_([0-9]+)$')::bigint)
  FROM pg_class c
 WHERE c.relnamespace = 'payday'::regnamespace AND c.relkind = 'r' AND c.relname ~ '^transfers_payday_[0-9]+$'
   AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
 ORDER BY c.relname;
""" + REVERSALS_FKS


def upgrade() -> None:
    execute_sql(op, KEEP_VIEWS)
    run_schema(op, "0006_transfers_partitions.sql")
    execute_sql(op, RESTATE_VIEWS)
    load_functions(op)
    execute_sql(op, ATTACH_RETURNED)


def downgrade() -> None:
    execute_sql(op, KEEP_VIEWS)
    execute_sql(op, DOWNGRADE)
    execute_sql(op, RESTATE_VIEWS)
    execute_sql(op, DOWNGRADE_AFTER_VIEWS)

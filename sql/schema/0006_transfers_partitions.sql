-- 0006: payday.transfers partitioned by ranges of id (issue 4, fourth round; the figures
-- are in bench/README.md).
--
-- A payday inserts millions of tip transfers at once, and every one of them went into the
-- tipper and the tippee B-trees of one ever-growing table: a descent per index per row,
-- in random tippee order. At 1M participants that was most of pay_tips(). Now
-- pay_tips() writes a payday's tip transfers into a table of their own, builds its
-- indexes in one sorted pass each, and attaches it as a partition, all in its one
-- transaction (sql/functions/lifecycle/pay_tips.sql).
--
-- Ids, and so partitions:
--   [MINVALUE, 2^40)               payday.transfers_ledger: every transfer written before
--                                  this revision, and every manual transfer and reversal
--                                  (payday.transfers_id_seq, capped below 2^40);
--   [n * 2^40, (n + 1) * 2^40)     payday.transfers_payday_<n>: the tip transfers of
--                                  payday n, numbered in the order pay_tips() pays them.
-- Everything reads and writes payday.transfers as before: the primary key on id, the
-- tipper, tippee and payday_id indexes, the append-only row trigger and the reference
-- checks are the partitioned table's; each partition also refuses TRUNCATE on its own
-- (a statement trigger is not inherited). payday.reversals references the partitioned
-- table, so a payday's tip transfer can be reversed.

-- Views read payday.transfers by oid: the migration keeps their definitions before this
-- file runs and restates them, on the partitioned table, after it
-- (migrations/versions/0006_transfers_partitions.py).

-- The table as it was becomes the first partition, under a name of its own (its CHECK
-- constraints keep theirs: a partition carries the parent's constraints by name).
ALTER TABLE payday.transfers RENAME TO transfers_ledger;
ALTER INDEX payday.transfers_pkey RENAME TO transfers_ledger_pkey;
ALTER INDEX payday.transfers_tipper_idx RENAME TO transfers_ledger_tipper_idx;
ALTER INDEX payday.transfers_tippee_idx RENAME TO transfers_ledger_tippee_idx;
ALTER INDEX payday.transfers_payday_idx RENAME TO transfers_ledger_payday_idx;
-- Triggers move to the partitioned table (row triggers come back as its clones).
DROP TRIGGER transfers_append_only ON payday.transfers_ledger;
DROP TRIGGER transfers_references_insert ON payday.transfers_ledger;
DROP TRIGGER transfers_references_update ON payday.transfers_ledger;
ALTER TRIGGER transfers_no_truncate ON payday.transfers_ledger RENAME TO transfers_ledger_no_truncate;
ALTER TABLE payday.reversals DROP CONSTRAINT reversals_transfer_id_fkey,
                             DROP CONSTRAINT reversals_reversal_id_fkey;

CREATE TABLE payday.transfers (
    id         bigint NOT NULL DEFAULT nextval('payday.transfers_id_seq'),
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    tipper     text NOT NULL,
    tippee     text NOT NULL,
    amount     numeric(35,2) NOT NULL CONSTRAINT transfers_amount_check CHECK (amount > 0),
    payday_id  bigint,
    context    text NOT NULL DEFAULT 'manual' CONSTRAINT transfers_context_check CHECK (context IN ('tip', 'manual')),
    CONSTRAINT transfers_no_self_transfer CHECK (tipper <> tippee),
    CONSTRAINT transfers_tip_in_payday CHECK (context <> 'tip' OR payday_id IS NOT NULL)
) PARTITION BY RANGE (id);
COMMENT ON TABLE payday.transfers IS
    'Money moved between two participants. Written only by payday functions. Partitioned by id: '
    'transfers_ledger holds ids below 2^40 (manual transfers, reversals, tips of paydays before schema 0006), '
    'transfers_payday_<n> the tip transfers of payday n (ids from n * 2^40).';
ALTER SEQUENCE payday.transfers_id_seq OWNED BY payday.transfers.id;
ALTER SEQUENCE payday.transfers_id_seq MAXVALUE 1099511627775;  -- 2^40 - 1: the ledger partition's ids

-- A database that went back to 0005 after paydays at 0006 holds their tip transfers here,
-- ids from 2^40 on: they return to tables of their own, which the migration attaches once
-- the functions are loaded (payday.attach_tip_transfers()).
DO $$
DECLARE
    n bigint;
    span constant bigint := 1099511627776;
BEGIN
    FOR n IN SELECT DISTINCT t.id / span FROM payday.transfers_ledger t WHERE t.id >= span ORDER BY 1 LOOP
        EXECUTE format('CREATE TABLE payday.%I (LIKE payday.transfers_ledger INCLUDING DEFAULTS INCLUDING CONSTRAINTS, '
                       'CONSTRAINT %I CHECK (id >= %s AND id < %s))',
                       'transfers_payday_' || n, 'transfers_payday_' || n || '_ids', n * span, (n + 1) * span);
        EXECUTE format('INSERT INTO payday.%I SELECT * FROM payday.transfers_ledger WHERE id >= %s AND id < %s ORDER BY id',
                       'transfers_payday_' || n, n * span, (n + 1) * span);
    END LOOP;
    DELETE FROM payday.transfers_ledger WHERE id >= span;
END
$$;

-- Every existing id is below 2^40: the CHECK proves it once, so ATTACH does not scan again.
ALTER TABLE payday.transfers_ledger
    ADD CONSTRAINT transfers_ledger_ids CHECK (id < 1099511627776);
ALTER TABLE payday.transfers ATTACH PARTITION payday.transfers_ledger FOR VALUES FROM (MINVALUE) TO (1099511627776);
ALTER TABLE payday.transfers_ledger DROP CONSTRAINT transfers_ledger_ids;

-- The partitioned indexes adopt the partition's own (no rebuild).
ALTER TABLE payday.transfers ADD CONSTRAINT transfers_pkey PRIMARY KEY (id);
CREATE INDEX transfers_tipper_idx ON payday.transfers (tipper);
CREATE INDEX transfers_tippee_idx ON payday.transfers (tippee);
CREATE INDEX transfers_payday_idx ON payday.transfers USING brin (payday_id) WITH (autosummarize = on);

-- payday.reversals' foreign keys now reference this table: the migration adds them once the
-- returned payday tables (above) are attached (migrations/versions/0006_transfers_partitions.py).

CREATE TRIGGER transfers_append_only
    BEFORE UPDATE OR DELETE ON payday.transfers
    FOR EACH ROW EXECUTE FUNCTION payday.ledger_append_only('tipper,tippee');
CREATE TRIGGER transfers_no_truncate
    BEFORE TRUNCATE ON payday.transfers
    FOR EACH STATEMENT EXECUTE FUNCTION payday.ledger_append_only('tipper,tippee');
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

GRANT SELECT ON payday.transfers TO payday_app, payday_runner, payday_readonly;

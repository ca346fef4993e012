-- 0004: scale, second round (issue 4; measurements in bench/README.md).
--
-- The set-based payout intents, payday.credit_intents(text[], text), are granted in
-- migrations/versions/0004_scale.py once every function file is loaded: a GRANT needs
-- the function to exist, and function files are always loaded after the schema file.

-- transfers.payday_id: a BRIN index instead of a B-tree. Transfers are append-only and a
-- payday writes its own in one block at the end of the table, so each payday's rows sit in
-- a few page ranges: a few dozen bytes of index per range, instead of one B-tree entry
-- (and a descent) per transfer. Inserting a payday's transfers: -20% (bench/README.md).
DROP INDEX payday.transfers_payday_idx;
CREATE INDEX transfers_payday_idx ON payday.transfers USING brin (payday_id) WITH (autosummarize = on);

-- The reference check of transfers (0003's statement trigger) is skipped for the one
-- statement of payday.pay_tips(), which marks it by setting payday.tip_transfers_xact to
-- its own transaction id for that statement only: every tipper and tippee it inserts is a
-- participant row the same statement updates (balance or pending), so each exists and is
-- locked by this transaction, stronger than the FOR KEY SHARE the check would take. Only
-- the schema owner's functions can insert transfers, so a session setting the variable
-- itself gains nothing: payday.transfer() checks its participants on its own. At 1M
-- participants the check cost ~6 s of pay_tips (bench/README.md).
DROP TRIGGER transfers_references_insert ON payday.transfers;
CREATE TRIGGER transfers_references_insert
    AFTER INSERT ON payday.transfers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    WHEN (current_setting('payday.tip_transfers_xact', true) IS DISTINCT FROM pg_current_xact_id()::text)
    EXECUTE FUNCTION payday.transfers_references_exist();

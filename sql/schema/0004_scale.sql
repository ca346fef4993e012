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

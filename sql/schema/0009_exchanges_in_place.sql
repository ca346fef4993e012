-- Schema 0009: an exchange's outcome is written in place (bench/README.md, seventh round).
--
-- Every exchange is written twice: inserted pre before its processor call, then updated
-- once with its outcome (payday.record_outcomes()). Until now that update put a new entry
-- into each of the table's indexes: exchanges_pre_idx's predicate reads status, which the
-- outcome changes, so PostgreSQL could not make it a heap-only (HOT) update. At a million
-- participants that is 225,000 outcomes a payday, four index entries each.
--
-- 1. exchanges_pre_idx goes. What it served, the pre exchanges, all belong to the open
--    payday (check() reports any other, and the runner refuses to start on it): they are
--    found through exchanges_one_per_kind_idx (payday_id, participant, kind), one payday's
--    entries (payday.pending_exchanges() and the pre counts of pay_tips() and finish()).
-- 2. exchanges_idempotency_key_idx goes: idempotency_key is 'payday-<payday_id>-exchange-
--    <id>', which names the id, so the primary key already makes it unique; nothing looks
--    an exchange up by it. One index entry less for every exchange inserted.
-- 3. exchanges leaves half of each page free, so an outcome's new row version fits beside
--    the old one (a HOT update needs room on the same page). Pages written before this
--    migration keep their packing.
DROP INDEX payday.exchanges_pre_idx;
DROP INDEX payday.exchanges_idempotency_key_idx;
ALTER TABLE payday.exchanges SET (fillfactor = 50);
COMMENT ON COLUMN payday.exchanges.idempotency_key IS
    'payday-<payday_id>-exchange-<id>: sent to the processor as the idempotency key and in metadata. Unique because '
    'it names the id (the primary key).';

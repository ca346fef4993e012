-- Schema 0010: a mark of every balance at each payday's close, so that the checks a payday
-- runs add up what happened since, not the whole history (bench/README.md, eighth round).
--
-- payday.check() re-adds every transfer and exchange ever written: ~1.2 us a transfer, so
-- at a million participants (4.8M tip transfers a week) a year of history would take
-- minutes a call, and `payday run` calls it twice a payday (before starting, and in
-- finish()). The ledger is append-only (triggers on transfers and exchanges, outcomes
-- written once), and a closed payday's rows never change again. So finish(), once the
-- invariants hold, writes down every balance it just verified (payday.mark_ledger()), and
-- payday.check_recent() checks each balance against that mark plus what was written after
-- it. payday.check() stays the full audit of the whole history.
--
-- 1. payday.ledger_marks: one row per mark (the payday it closed, the last transfer of the
--    ledger partition at that moment, how many balances it holds). It is also the lock
--    that orders a mark with a rename (below).
-- 2. payday.ledger_mark: the balances of the latest mark, one row per participant whose
--    balance is not their opening balance (the others are their opening balance). Each
--    mark writes a new table and drops the previous one (payday.mark_ledger()).
-- 3. A rename follows into the mark, as it does into transfers: a row trigger renames the
--    participant's mark row, after taking ledger_marks in ROW SHARE mode (mark_ledger()
--    takes it in EXCLUSIVE mode before reading the balances: a rename either commits before
--    the mark reads the names, or waits for the mark and renames its row).

CREATE TABLE payday.ledger_marks (
    payday_id             bigint PRIMARY KEY REFERENCES payday.paydays (id),
    last_ledger_transfer  bigint NOT NULL CHECK (last_ledger_transfer >= 0),
    nbalances             bigint NOT NULL CHECK (nbalances >= 0),
    marked_at             timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE payday.ledger_marks IS
    'One row per ledger mark, written by payday.finish() (payday.mark_ledger()) once the invariants held: the payday '
    'it closed, the highest id of payday.transfers below 2^40 (manual transfers and reversals) at that moment, and how '
    'many balances payday.ledger_mark holds. payday.check_recent() checks what came after the latest.';

CREATE TABLE payday.ledger_mark (
    username  text PRIMARY KEY,
    balance   numeric(35,2) NOT NULL
);
COMMENT ON TABLE payday.ledger_mark IS
    'The balances of the latest ledger mark (payday.ledger_marks): one row per participant whose balance was not '
    'their opening balance. Replaced by each payday.finish().';

GRANT SELECT ON payday.ledger_marks, payday.ledger_mark TO payday_app, payday_runner, payday_readonly;

CREATE FUNCTION payday.participants_rename_mark() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
BEGIN
    LOCK TABLE payday.ledger_marks IN ROW SHARE MODE;  -- after a mark being written, not during
    UPDATE payday.ledger_mark SET username = NEW.username WHERE username = OLD.username;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION payday.participants_rename_mark() IS
    'Row trigger of payday.participants (AFTER UPDATE OF username): renames the participant''s row of the latest '
    'ledger mark (payday.ledger_mark), after a mark being written (ROW SHARE on payday.ledger_marks, which '
    'payday.mark_ledger() takes in EXCLUSIVE mode). Returns NULL. Raises nothing of its own.';
CREATE TRIGGER participants_rename_mark
    AFTER UPDATE OF username ON payday.participants
    FOR EACH ROW WHEN (OLD.username IS DISTINCT FROM NEW.username)
    EXECUTE FUNCTION payday.participants_rename_mark();

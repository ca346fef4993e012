-- Schema 0002: hardening. Roles and privileges, an append-only ledger, paydays written only
-- by the payday functions, and the reversals table behind payday.reverse_transfer().
-- See docs/roles.md (who uses which role) and docs/functions.md (PD005).
--
-- Runs before the function loader (the loader always runs last), but every function file
-- was already loaded by 0001 (the loader loads all of sql/functions/ at head), so the
-- GRANTs below find the functions they name.

------------------------------------------------------------------------------------------
-- Roles. Cluster-wide: one set for every database of the cluster (tests create many).
-- Created only when missing; a concurrent migrator creating the same role is not an error.
------------------------------------------------------------------------------------------
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['payday_app', 'payday_runner', 'payday_readonly'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by another migrator of this cluster
            END;
        END IF;
    END LOOP;
END
$$;

------------------------------------------------------------------------------------------
-- Privileges.
------------------------------------------------------------------------------------------
-- Nothing for PUBLIC: no function of schema payday is executable by PUBLIC, now or later
-- (the default for functions this role creates in this database, so new function files
-- loaded by later revisions start private too).
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA payday FROM PUBLIC;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

GRANT USAGE ON SCHEMA payday TO payday_app, payday_runner, payday_readonly;
GRANT SELECT ON ALL TABLES IN SCHEMA payday TO payday_app, payday_runner, payday_readonly;

-- Building blocks the views call: whoever reads a view needs EXECUTE on its functions.
-- Plain LANGUAGE sql, no SECURITY DEFINER, no SET: they stay inlinable.
GRANT EXECUTE ON FUNCTION payday.open_sentinel(), payday.fees(), payday.charge_for(numeric)
    TO payday_app, payday_runner, payday_readonly;

-- Read-only API (each SECURITY DEFINER; changes nothing).
GRANT EXECUTE ON FUNCTION
    payday.open_payday(), payday.check(), payday.charges_due(), payday.credits_due(),
    payday.pending_exchanges(), payday.upcharge(numeric), payday.skim_credit(numeric)
    TO payday_app, payday_runner, payday_readonly;

-- The runner: the money-moving steps of a payday, nothing else (no manual transfers,
-- no reversals: those are a DBA's, as the schema owner).
GRANT EXECUTE ON FUNCTION
    payday.start(), payday.pay_tips(), payday.clear_pending(), payday.finish(),
    payday.charge_intent(text, text), payday.charge_intents(text),
    payday.credit_intent(text, text),
    payday.charge_outcome(bigint, boolean, text, text), payday.credit_outcome(bigint, boolean, text, text),
    payday.record_outcomes(bigint[], boolean[], text[], text[])
    TO payday_runner;

-- The web application: the two inserts of SPEC 2, exactly as written, and profile edits.
-- Money columns (balance after creation, pending, opening_balance, last_*_result) are not
-- grantable to it; a non-zero balance at insert is refused by participants_balance_guard.
GRANT INSERT (username, claimed_time, is_suspicious, balance, balanced_account_uri, stripe_customer_id)
    ON payday.participants TO payday_app;
GRANT UPDATE (username, claimed_time, is_suspicious, balanced_account_uri, stripe_customer_id)
    ON payday.participants TO payday_app;
GRANT INSERT (ctime, mtime, tipper, tippee, amount) ON payday.tips TO payday_app;
GRANT USAGE ON SEQUENCE payday.tips_id_seq TO payday_app;

------------------------------------------------------------------------------------------
-- The sandbox processor's own schema. The sandbox creates it on first use, but creating a
-- schema needs CREATE on the database, which the runner's role does not have: create it
-- here, exactly as runner/processors/sandbox.py does, and let payday_runner use it.
------------------------------------------------------------------------------------------
CREATE SCHEMA IF NOT EXISTS payday_sandbox;
CREATE TABLE IF NOT EXISTS payday_sandbox.operations (
    idempotency_key text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('charge', 'credit')),
    username        text NOT NULL,
    route           text NOT NULL,
    cents           bigint NOT NULL CHECK (cents > 0),
    succeeded       boolean NOT NULL,
    error           text CHECK (succeeded = (error IS NULL)),
    created         timestamptz NOT NULL DEFAULT now(),
    calls           integer NOT NULL DEFAULT 1
);
COMMENT ON TABLE payday_sandbox.operations IS
    'What the sandbox processor did: one row per idempotency key (calls: times it was sent).';
GRANT USAGE ON SCHEMA payday_sandbox TO payday_runner;
GRANT SELECT, INSERT, UPDATE ON payday_sandbox.operations TO payday_runner;

------------------------------------------------------------------------------------------
-- Opening balances: only the table owner (a DBA migrating accounts) may create a
-- participant with money. The web application's insert carries balance 0.
------------------------------------------------------------------------------------------
CREATE FUNCTION payday.participants_balance_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
BEGIN
    IF NEW.balance <> 0
       AND NOT pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID), 'USAGE') THEN
        RAISE EXCEPTION 'role % may not create participant "%" with a balance of % (only the owner of payday.participants sets opening balances)',
                        current_user, NEW.username, NEW.balance
            USING ERRCODE = '42501',
                  HINT = 'Insert balance 0: money enters through charges. A migrated account''s opening balance is set by a DBA.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION payday.participants_balance_guard() IS
    'Trigger: refuses (42501) an INSERT into payday.participants with a non-zero balance unless the current role '
    'has the table owner''s privileges (a DBA setting an opening balance). Returns the new row.';
CREATE TRIGGER participants_balance_guard
    BEFORE INSERT ON payday.participants
    FOR EACH ROW EXECUTE FUNCTION payday.participants_balance_guard();

------------------------------------------------------------------------------------------
-- Append-only ledger. transfers, exchanges and reversals are never updated, deleted or
-- truncated, whoever asks (the owner included), with two exceptions:
--   * an exchange's single move from pre to succeeded/failed (only status, error,
--     processor_ref and recorded_at change, once);
--   * ON UPDATE CASCADE of a participant's rename: only the username columns change, and
--     only from a name that no longer exists (so rows cannot be moved to someone else).
-- A correction is a new row: payday.reverse_transfer().
------------------------------------------------------------------------------------------
CREATE FUNCTION payday.ledger_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    -- TG_ARGV: the table's username columns; for exchanges also the outcome columns.
    names text[] := string_to_array(TG_ARGV[0], ',');
    outcome text[] := coalesce(string_to_array(TG_ARGV[1], ','), '{}');
    generated text[] := ARRAY['kind', 'idempotency_key'];
    o jsonb;
    n jsonb;
    col text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION '%.% is append-only: TRUNCATE refused', TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'PD005', HINT = 'Ledger rows are never removed; a correction is a new row.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '%.% is append-only: DELETE of row % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, to_jsonb(OLD) -> 'id'
            USING ERRCODE = 'PD005', HINT = 'Ledger rows are never removed; a correction is a new row (payday.reverse_transfer).';
    END IF;

    o := to_jsonb(OLD) - generated;
    n := to_jsonb(NEW) - generated;

    -- A rename cascading from participants: only username columns, each from a name
    -- that is gone from participants.
    IF (o - names) = (n - names) THEN
        FOREACH col IN ARRAY names LOOP
            IF o -> col IS DISTINCT FROM n -> col
               AND EXISTS (SELECT 1 FROM payday.participants p WHERE p.username = o ->> col) THEN
                RAISE EXCEPTION '%.% is append-only: row % cannot be moved from "%" to "%"', TG_TABLE_SCHEMA,
                                TG_TABLE_NAME, o -> 'id', o ->> col, n ->> col
                    USING ERRCODE = 'PD005',
                          HINT = 'Only a participant''s rename (UPDATE payday.participants SET username) changes names here.';
            END IF;
        END LOOP;
        RETURN NEW;
    END IF;

    -- An exchange's outcome: pre -> succeeded/failed, once, outcome columns only.
    IF cardinality(outcome) > 0
       AND o ->> 'status' = 'pre' AND n ->> 'status' IN ('succeeded', 'failed')
       AND (o - outcome) = (n - outcome) THEN
        RETURN NEW;
    END IF;

    RAISE EXCEPTION '%.% is append-only: UPDATE of row % refused%', TG_TABLE_SCHEMA, TG_TABLE_NAME, o -> 'id',
                    CASE WHEN cardinality(outcome) > 0 AND o ->> 'status' <> 'pre'
                         THEN format(' (its outcome %s is final)', o ->> 'status') ELSE '' END
        USING ERRCODE = 'PD005',
              HINT = CASE WHEN cardinality(outcome) > 0
                          THEN 'Only a pre exchange takes its outcome, once (payday.charge_outcome / payday.credit_outcome).'
                          ELSE 'A correction is a new row: payday.reverse_transfer(transfer_id, reason).' END;
END
$$;
COMMENT ON FUNCTION payday.ledger_append_only() IS
    'Trigger of the append-only ledger tables (transfers, exchanges, reversals): raises PD005 for UPDATE, DELETE and '
    'TRUNCATE, except a participant''s rename cascading into the username columns (TG_ARGV[0]) and, for exchanges, '
    'the single move of a pre exchange to succeeded or failed changing only the outcome columns (TG_ARGV[1]). '
    'Returns the new row when allowed.';

CREATE TRIGGER transfers_append_only
    BEFORE UPDATE OR DELETE ON payday.transfers
    FOR EACH ROW EXECUTE FUNCTION payday.ledger_append_only('tipper,tippee');
CREATE TRIGGER transfers_no_truncate
    BEFORE TRUNCATE ON payday.transfers
    FOR EACH STATEMENT EXECUTE FUNCTION payday.ledger_append_only('tipper,tippee');
-- The outcome move is the one UPDATE a payday makes by the thousand (payday.record_outcomes):
-- the WHEN clause lets it through without calling the function. It names the columns that
-- must not change; tests/hardening pins the column list of payday.exchanges, so a new column
-- is a reminder to add it here. Everything else goes to the function's generic check.
CREATE TRIGGER exchanges_append_only
    BEFORE UPDATE ON payday.exchanges
    FOR EACH ROW
    WHEN (NOT (OLD.status = 'pre' AND NEW.status IN ('succeeded', 'failed')
               AND (NEW.id, NEW."timestamp", NEW.participant, NEW.amount, NEW.fee, NEW.processor, NEW.route,
                    NEW.payday_id)
                   IS NOT DISTINCT FROM
                   (OLD.id, OLD."timestamp", OLD.participant, OLD.amount, OLD.fee, OLD.processor, OLD.route,
                    OLD.payday_id)))
    EXECUTE FUNCTION payday.ledger_append_only('participant', 'status,error,processor_ref,recorded_at');
CREATE TRIGGER exchanges_no_delete
    BEFORE DELETE ON payday.exchanges
    FOR EACH ROW EXECUTE FUNCTION payday.ledger_append_only('participant');
CREATE TRIGGER exchanges_no_truncate
    BEFORE TRUNCATE ON payday.exchanges
    FOR EACH STATEMENT EXECUTE FUNCTION payday.ledger_append_only('participant');

------------------------------------------------------------------------------------------
-- paydays: written only from inside a SECURITY DEFINER function of schema payday
-- (payday.start, pay_tips, clear_pending, finish, record_outcomes, transfer, ...).
--
-- How: the trigger reads the PL/pgSQL call stack (GET DIAGNOSTICS ... PG_CONTEXT) and
-- requires a frame of such a function. Unlike a flag set with set_config(), nobody can
-- switch this on by hand: an UPDATE typed in psql, a DO block or an ad-hoc function has
-- no such frame. Faking one takes creating a function of that name, i.e. the schema
-- owner changing the code on purpose: this guards against mistakes, privileges (no
-- grant on paydays to any role) guard against misuse. A direct INSERT is allowed only
-- with every counter zero (an empty payday carries no figures to protect).
------------------------------------------------------------------------------------------
CREATE FUNCTION payday.paydays_written_by_functions() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    stack text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'payday.paydays is history: TRUNCATE refused'
            USING ERRCODE = 'PD005';
    END IF;
    IF TG_OP = 'INSERT'
       AND (NEW.nparticipants, NEW.ntippers, NEW.ntips, NEW.ntransfers, NEW.transfer_volume, NEW.ncc_failing,
            NEW.ncc_missing, NEW.ncharges, NEW.charge_volume, NEW.charge_fees_volume, NEW.nachs, NEW.ach_volume,
            NEW.ach_fees_volume, NEW.nach_failing) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) THEN
        RETURN NEW;
    END IF;

    GET DIAGNOSTICS stack = PG_CONTEXT;
    IF EXISTS (SELECT 1
                 FROM regexp_matches(stack, '(?:^|\n)PL/pgSQL function (?:(\w+)\.)?(\w+)\(', 'g') AS m
                 JOIN pg_proc p ON p.proname = m[2] AND p.pronamespace = 'payday'::regnamespace AND p.prosecdef
                WHERE m[1] IS NULL OR m[1] = 'payday') THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;

    RAISE EXCEPTION 'payday.paydays is written only by the payday functions: % of payday % refused', TG_OP,
                    coalesce(to_jsonb(NEW) -> 'id', to_jsonb(OLD) -> 'id')
        USING ERRCODE = 'PD005',
              HINT = 'Counters and phases follow from payday.start(), pay_tips(), clear_pending(), record_outcomes(), '
                     'transfer() and finish(); payday.check() compares them with the ledger.';
END
$$;
COMMENT ON FUNCTION payday.paydays_written_by_functions() IS
    'Trigger: raises PD005 for an UPDATE or DELETE of payday.paydays (or an INSERT with a non-zero counter) unless '
    'it comes from inside a SECURITY DEFINER function of schema payday (found on the PL/pgSQL call stack), and for '
    'any TRUNCATE. Returns the row when allowed.';

CREATE TRIGGER paydays_written_by_functions
    BEFORE INSERT OR UPDATE OR DELETE ON payday.paydays
    FOR EACH ROW EXECUTE FUNCTION payday.paydays_written_by_functions();
CREATE TRIGGER paydays_no_truncate
    BEFORE TRUNCATE ON payday.paydays
    FOR EACH STATEMENT EXECUTE FUNCTION payday.paydays_written_by_functions();

------------------------------------------------------------------------------------------
-- Reversals: which transfer reverses which, and why (payday.reverse_transfer()).
------------------------------------------------------------------------------------------
CREATE TABLE payday.reversals (
    transfer_id  bigint PRIMARY KEY REFERENCES payday.transfers (id),
    reversal_id  bigint NOT NULL UNIQUE REFERENCES payday.transfers (id),
    reason       text NOT NULL CHECK (btrim(reason) <> ''),
    ctime        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reversals_not_itself CHECK (transfer_id <> reversal_id)
);
COMMENT ON TABLE payday.reversals IS
    'Corrections of the append-only ledger: transfer reversal_id moved transfer_id''s amount back, for reason. '
    'A transfer is reversed at most once. Written only by payday.reverse_transfer().';
CREATE TRIGGER reversals_append_only
    BEFORE UPDATE OR DELETE ON payday.reversals
    FOR EACH ROW EXECUTE FUNCTION payday.ledger_append_only('');
CREATE TRIGGER reversals_no_truncate
    BEFORE TRUNCATE ON payday.reversals
    FOR EACH STATEMENT EXECUTE FUNCTION payday.ledger_append_only('');
GRANT SELECT ON payday.reversals TO payday_app, payday_runner, payday_readonly;

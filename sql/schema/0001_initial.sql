-- payday schema, revision 0001: tables, constraints, indexes.
-- Functions live in sql/functions/ and are (re)loaded by every migration.

CREATE SCHEMA IF NOT EXISTS payday;

COMMENT ON SCHEMA payday IS
    'Weekly payday of a tipping platform: participants, tips, transfers, exchanges, paydays '
    'and the functions that move money between them. See docs/dba.md.';

-- The sentinel ts_end of the one payday still open.
CREATE FUNCTION payday.open_sentinel() RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT '1970-01-01T00:00:00+00'::timestamptz $$;
COMMENT ON FUNCTION payday.open_sentinel() IS
    'Returns the ts_end value (1970-01-01T00:00:00+00) that marks the one payday still open. Raises nothing.';

CREATE TABLE payday.participants (
    username              text PRIMARY KEY
                          CHECK (username <> '' AND length(username) <= 255),
    claimed_time          timestamptz,
    is_suspicious         boolean,
    balance               numeric(35,2) NOT NULL DEFAULT 0 CHECK (balance >= 0),
    pending               numeric(35,2) DEFAULT NULL CHECK (pending >= 0),
    balanced_account_uri  text,
    stripe_customer_id    text,
    last_bill_result      text,
    last_ach_result       text,
    ctime                 timestamptz NOT NULL DEFAULT now(),
    -- The balance the participant was created with (money that predates this ledger).
    -- Set once by a trigger from the inserted balance; the ledger starts from it.
    opening_balance       numeric(35,2) NOT NULL DEFAULT 0 CHECK (opening_balance >= 0)
);
COMMENT ON TABLE payday.participants IS
    'People on the platform. Written by the web application (profile columns) and by payday functions (money columns).';
COMMENT ON COLUMN payday.participants.pending IS
    'Money received during the open payday, not yet in balance. NULL outside a payday.';
COMMENT ON COLUMN payday.participants.opening_balance IS
    'Balance at creation (set by trigger from the inserted balance); the start of this participant''s ledger.';

-- Payin and payout both select claimed, non-suspicious participants oldest claim first.
CREATE INDEX participants_claimed_idx ON payday.participants (claimed_time)
    WHERE claimed_time IS NOT NULL;

CREATE TABLE payday.tips (
    id      bigserial PRIMARY KEY,
    ctime   timestamptz NOT NULL DEFAULT now(),
    mtime   timestamptz NOT NULL DEFAULT now(),
    tipper  text NOT NULL REFERENCES payday.participants (username) ON UPDATE CASCADE,
    tippee  text NOT NULL REFERENCES payday.participants (username) ON UPDATE CASCADE,
    amount  numeric(35,2) NOT NULL CHECK (amount >= 0),
    CONSTRAINT tips_no_self_tip CHECK (tipper <> tippee)
);
COMMENT ON TABLE payday.tips IS
    'Append-only tip history. The current tip of a pair is its row with the latest mtime; amount 0 means stopped.';
-- The latest tip of each pair: DISTINCT ON (tipper, tippee) ORDER BY mtime DESC.
CREATE INDEX tips_pair_latest_idx ON payday.tips (tipper, tippee, mtime DESC) INCLUDE (amount, ctime);
CREATE INDEX tips_tippee_idx ON payday.tips (tippee);

CREATE TABLE payday.paydays (
    id                  bigserial PRIMARY KEY,
    ts_start            timestamptz NOT NULL DEFAULT now(),
    ts_end              timestamptz NOT NULL DEFAULT payday.open_sentinel() UNIQUE,
    -- payin: charging cards; clear: tips paid, pending not yet cleared;
    -- payout: paying out to bank accounts; done: closed.
    phase               text NOT NULL DEFAULT 'payin'
                        CHECK (phase IN ('payin', 'clear', 'payout', 'done')),
    nparticipants       bigint NOT NULL DEFAULT 0,
    ntippers            bigint NOT NULL DEFAULT 0,
    ntips               bigint NOT NULL DEFAULT 0,
    ntransfers          bigint NOT NULL DEFAULT 0,
    transfer_volume     numeric(35,2) NOT NULL DEFAULT 0,
    ncc_failing         bigint NOT NULL DEFAULT 0,
    ncc_missing         bigint NOT NULL DEFAULT 0,
    ncharges            bigint NOT NULL DEFAULT 0,
    charge_volume       numeric(35,2) NOT NULL DEFAULT 0,
    charge_fees_volume  numeric(35,2) NOT NULL DEFAULT 0,
    nachs               bigint NOT NULL DEFAULT 0,
    ach_volume          numeric(35,2) NOT NULL DEFAULT 0,
    ach_fees_volume     numeric(35,2) NOT NULL DEFAULT 0,
    nach_failing        bigint NOT NULL DEFAULT 0,
    CONSTRAINT paydays_phase_matches_end
        CHECK ((phase = 'done') = (ts_end <> payday.open_sentinel())),
    CONSTRAINT paydays_end_after_start
        CHECK (ts_end = payday.open_sentinel() OR ts_end >= ts_start)
);
COMMENT ON TABLE payday.paydays IS
    'One row per payday. ts_end = 1970-01-01T00:00:00+00 marks the one payday still open (UNIQUE makes a second impossible).';

CREATE TABLE payday.transfers (
    id         bigserial PRIMARY KEY,
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    tipper     text NOT NULL REFERENCES payday.participants (username) ON UPDATE CASCADE,
    tippee     text NOT NULL REFERENCES payday.participants (username) ON UPDATE CASCADE,
    amount     numeric(35,2) NOT NULL CHECK (amount > 0),
    payday_id  bigint REFERENCES payday.paydays (id),
    -- tip: paid by payday.pay_tips(); manual: payday.transfer() by a DBA.
    context    text NOT NULL DEFAULT 'manual' CHECK (context IN ('tip', 'manual')),
    CONSTRAINT transfers_no_self_transfer CHECK (tipper <> tippee),
    CONSTRAINT transfers_tip_in_payday CHECK (context <> 'tip' OR payday_id IS NOT NULL)
);
COMMENT ON TABLE payday.transfers IS
    'Money moved between two participants. Written only by payday functions.';
CREATE INDEX transfers_payday_pair_idx ON payday.transfers (payday_id, tipper, tippee);
CREATE INDEX transfers_tipper_idx ON payday.transfers (tipper);
CREATE INDEX transfers_tippee_idx ON payday.transfers (tippee);

CREATE TABLE payday.exchanges (
    id             bigserial PRIMARY KEY,
    "timestamp"    timestamptz NOT NULL DEFAULT now(),
    participant    text NOT NULL REFERENCES payday.participants (username) ON UPDATE CASCADE,
    -- Charges are positive (net of fee: what the balance receives); credits negative
    -- (what the bank account receives). fee is positive either way.
    amount         numeric(35,2) NOT NULL CHECK (amount <> 0),
    fee            numeric(35,2) NOT NULL CHECK (fee >= 0),
    kind           text GENERATED ALWAYS AS (CASE WHEN amount > 0 THEN 'charge' ELSE 'credit' END) STORED,
    processor      text NOT NULL CHECK (processor IN ('balanced', 'stripe', 'sandbox', 'manual')),
    -- The funding source used: a balanced_account_uri or a stripe_customer_id.
    route          text,
    -- The processor's own reference for the operation (charge or credit id), once known.
    processor_ref  text,
    status         text NOT NULL DEFAULT 'pre' CHECK (status IN ('pre', 'succeeded', 'failed')),
    error          text,
    payday_id      bigint NOT NULL REFERENCES payday.paydays (id),
    recorded_at    timestamptz,
    -- Sent to the processor as the idempotency key and in metadata.
    idempotency_key text GENERATED ALWAYS AS ('payday-' || payday_id || '-exchange-' || id) STORED,
    CONSTRAINT exchanges_outcome_recorded CHECK ((status = 'pre') = (recorded_at IS NULL)),
    CONSTRAINT exchanges_error_on_failure CHECK (status <> 'failed' OR error IS NOT NULL)
);
COMMENT ON TABLE payday.exchanges IS
    'Money moved between the platform and the outside world. pre: recorded before the processor call; '
    'succeeded/failed: its outcome. Written only by payday functions.';
COMMENT ON COLUMN payday.exchanges.amount IS
    'Charge: positive, net of fee (added to balance). Credit: negative, what the bank receives (balance loses amount - fee).';
-- At most one charge and one credit per participant per payday: the exactly-once guard.
CREATE UNIQUE INDEX exchanges_one_per_kind_idx ON payday.exchanges (payday_id, participant, kind);
CREATE INDEX exchanges_pre_idx ON payday.exchanges (payday_id) WHERE status = 'pre';
CREATE INDEX exchanges_participant_idx ON payday.exchanges (participant);
CREATE UNIQUE INDEX exchanges_idempotency_key_idx ON payday.exchanges (idempotency_key);

-- The web application inserts participants with a balance (money that predates this
-- ledger, e.g. migrated accounts). Record it once as the start of the ledger.
CREATE FUNCTION payday.participants_set_opening_balance() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.opening_balance := NEW.balance;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION payday.participants_set_opening_balance() IS
    'Trigger: on INSERT into payday.participants, copies the inserted balance into opening_balance, '
    'the start of the participant''s ledger. Returns the new row. Raises nothing.';
CREATE TRIGGER participants_opening_balance
    BEFORE INSERT ON payday.participants
    FOR EACH ROW EXECUTE FUNCTION payday.participants_set_opening_balance();

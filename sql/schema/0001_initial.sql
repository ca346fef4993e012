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

-- Fee constants and the card upcharge, in one place. Plain SQL so the planner inlines them.
CREATE FUNCTION payday.fees(
    OUT charge_fixed numeric, OUT charge_rate numeric, OUT minimum_charge numeric,
    OUT credit_fee numeric, OUT minimum_credit numeric)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 0.30::numeric, 1.039::numeric, 9.32::numeric, 0.30::numeric, 10.00::numeric $$;
COMMENT ON FUNCTION payday.fees() IS
    'Returns the fee constants as one row: charge_fixed 0.30, charge_rate 1.039, minimum_charge 9.32, '
    'credit_fee 0.30, minimum_credit 10.00. Raises nothing.';

CREATE FUNCTION payday.charge_for(amount numeric) RETURNS numeric(35,2)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (ceil((amount + 0.30) * 1.039 * 100) * 0.01)::numeric(35,2) $$;
COMMENT ON FUNCTION payday.charge_for(numeric) IS
    'Returns what the card pays for a nominal amount: (amount + 0.30) * 1.039 rounded up to the cent. '
    'Unvalidated building block of payday.upcharge (use that from psql). Returns NULL for NULL.';

-- The open payday, as a one-row relation for the views below.
CREATE VIEW payday.open_payday_v AS
    SELECT * FROM payday.paydays WHERE ts_end = payday.open_sentinel();
COMMENT ON VIEW payday.open_payday_v IS 'The payday still open (zero or one row).';

-- SPEC 4.3: payin (and payout) participants of the open payday.
CREATE VIEW payday.payday_participants AS
    SELECT p.*, pd.id AS payday_id
      FROM payday.open_payday_v pd
      JOIN payday.participants p
        ON p.claimed_time < pd.ts_start
       AND p.is_suspicious IS NOT TRUE;
COMMENT ON VIEW payday.payday_participants IS
    'Participants taking part in the open payday: claimed before ts_start, not suspicious.';

-- SPEC 4.4: each payday participant's tips for the open payday: the latest tip per tippee
-- with mtime < ts_start, tippee not suspicious, pair not yet paid a tip in this payday.
CREATE VIEW payday.due_tips AS
    SELECT t.tipper, t.tippee, t.amount, t.ctime,
           (e.claimed_time IS NOT NULL AND e.claimed_time < pd.ts_start) AS tippee_claimed,
           pd.id AS payday_id
      FROM payday.open_payday_v pd
      CROSS JOIN LATERAL (
            SELECT DISTINCT ON (x.tipper, x.tippee) x.tipper, x.tippee, x.amount, x.ctime
              FROM payday.tips x
             WHERE x.mtime < pd.ts_start
             ORDER BY x.tipper, x.tippee, x.mtime DESC, x.id DESC) t
      JOIN payday.participants r
        ON r.username = t.tipper AND r.claimed_time < pd.ts_start AND r.is_suspicious IS NOT TRUE
      JOIN payday.participants e
        ON e.username = t.tippee AND e.is_suspicious IS NOT TRUE
     WHERE NOT EXISTS (SELECT 1 FROM payday.transfers y
                        WHERE y.payday_id = pd.id AND y.context = 'tip'
                          AND y.tipper = t.tipper AND y.tippee = t.tippee);
COMMENT ON VIEW payday.due_tips IS
    'Tips of the open payday (SPEC 4.4), one row per (tipper, tippee): the latest tip before ts_start. '
    'tippee_claimed: the tippee claimed before ts_start (only those count towards what is owed and get paid).';

-- SPEC 4.5: who needs a card charge now, and for how much.
CREATE VIEW payday.due_charges AS
    SELECT p.username, p.claimed_time, p.balance, o.owed,
           o.owed - p.balance AS short,
           greatest(o.owed - p.balance, f.minimum_charge)::numeric(35,2) AS amount,
           payday.charge_for(greatest(o.owed - p.balance, f.minimum_charge)) AS charge_amount,
           payday.charge_for(greatest(o.owed - p.balance, f.minimum_charge))
               - greatest(o.owed - p.balance, f.minimum_charge)::numeric(35,2) AS fee,
           CASE WHEN p.balanced_account_uri IS NOT NULL THEN 'balanced' ELSE 'stripe' END AS processor,
           coalesce(p.balanced_account_uri, p.stripe_customer_id) AS route,
           p.payday_id
      FROM payday.payday_participants p
      JOIN (SELECT tipper, sum(amount) AS owed
              FROM payday.due_tips WHERE tippee_claimed GROUP BY tipper) o
        ON o.tipper = p.username
     CROSS JOIN payday.fees() f
     WHERE o.owed > p.balance
       AND p.is_suspicious IS FALSE
       AND coalesce(p.balanced_account_uri, p.stripe_customer_id) IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM payday.exchanges x
                        WHERE x.payday_id = p.payday_id AND x.participant = p.username
                          AND x.kind = 'charge');
COMMENT ON VIEW payday.due_charges IS
    'Charges the open payday still has to make (SPEC 4.5): whitelisted payday participants with a funding source '
    'whose owed tips exceed their balance and who have no charge in this payday yet.';

-- SPEC 4.8: who gets paid out now, and how much.
CREATE VIEW payday.due_credits AS
    SELECT p.username, p.claimed_time, p.balance,
           coalesce(o.obligations, 0)::numeric(35,2) AS obligations,
           (p.balance - coalesce(o.obligations, 0))::numeric(35,2) AS payout,
           (p.balance - coalesce(o.obligations, 0) - f.credit_fee)::numeric(35,2) AS credit_amount,
           f.credit_fee::numeric(35,2) AS fee,
           p.balanced_account_uri AS route,
           p.payday_id
      FROM payday.payday_participants p
      LEFT JOIN (SELECT t.tipper, sum(t.amount) AS obligations
                   FROM (SELECT DISTINCT ON (x.tipper, x.tippee) x.tipper, x.tippee, x.amount
                           FROM payday.tips x
                          ORDER BY x.tipper, x.tippee, x.mtime DESC, x.id DESC) t
                   JOIN payday.participants e
                     ON e.username = t.tippee AND e.is_suspicious IS NOT TRUE
                  GROUP BY t.tipper) o
        ON o.tipper = p.username
     CROSS JOIN payday.fees() f
     WHERE p.is_suspicious IS FALSE
       AND p.balanced_account_uri IS NOT NULL
       AND p.balance - coalesce(o.obligations, 0) >= f.minimum_credit
       AND NOT EXISTS (SELECT 1 FROM payday.exchanges x
                        WHERE x.payday_id = p.payday_id AND x.participant = p.username
                          AND x.kind = 'credit');
COMMENT ON VIEW payday.due_credits IS
    'Payouts the open payday still has to make (SPEC 4.8): whitelisted payday participants with a '
    'balanced_account_uri whose balance minus current obligations is at least 10.00 and who have no credit yet.';

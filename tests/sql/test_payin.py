"""SPEC §4 step 5 and §5: who is charged, intents, outcomes, counters, idempotency."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from .world import BASE, D, Driver, World, balance, counters, participant, row, rows, snapshot, start, upcharge, value


def _community(world: World) -> None:
    """Everyone owes bob 5.00 and has 1.00, unless said otherwise."""
    world.participant("bob", balanced="/v1/accounts/bob")
    community: list[tuple[str, dict[str, Any]]] = [
        ("balanced", dict(balanced="/v1/accounts/b")),
        ("both", dict(balanced="/v1/accounts/both", stripe="cus_both")),
        ("stripe", dict(stripe="cus_s")),
        ("nofunding", dict()),
        ("unreviewed", dict(suspicious=None, stripe="cus_u")),
        ("suspicious", dict(suspicious=True, stripe="cus_x")),
        ("stub", dict(claimed=None, stripe="cus_stub")),
        ("rich", dict(balance="5.00", stripe="cus_rich")),       # exactly covered: not due
    ]
    for name, kw in community:
        kw.setdefault("balance", "1.00")
        world.participant(name, **kw)
        world.tip(name, "bob", "5.00")


def test_charges_due_selection(db, world: World, tap) -> None:
    _community(world)
    start(db)
    charge, fee = upcharge(D("9.32"))
    tap.results_eq("SELECT * FROM payday.charges_due()", [
        ("balanced", D("4.00"), D("9.32"), charge, fee, "balanced", "/v1/accounts/b"),
        ("both", D("4.00"), D("9.32"), charge, fee, "balanced", "/v1/accounts/both"),   # balanced preferred
        ("stripe", D("4.00"), D("9.32"), charge, fee, "stripe", "cus_s"),
    ])


def test_no_funding_source_counts_ncc_missing(db, world: World, tap) -> None:
    _community(world)
    d = Driver(db)
    d.start()
    d.charges()
    # nofunding and the unreviewed-with-funding: only the one without a funding source is
    # "missing"; unreviewed and suspicious people are never charged.
    assert d.pay_tips()["ncc_missing"] == 1
    tap.is_("SELECT ncc_missing FROM payday.open_payday()", 1)
    assert participant(db, "nofunding")["last_bill_result"] is None
    assert participant(db, "unreviewed")["last_bill_result"] is None
    tap.is_("SELECT count(*) FROM payday.exchanges WHERE participant IN ('unreviewed', 'suspicious', 'stub',"
            " 'nofunding', 'rich')", 0)
    d.clear(), d.credits(), d.finish()


def test_unreviewed_without_funding_is_counted_missing(db, world: World) -> None:
    """The reference checks the funding source before the whitelist."""
    world.participant("bob")
    world.participant("unreviewed", suspicious=None, balance="1.00")
    world.tip("unreviewed", "bob", "5.00")
    d = Driver(db)
    d.start()
    assert d.charges() == []
    assert d.pay_tips()["ncc_missing"] == 1
    d.clear(), d.finish()


def test_owed_counts_only_tips_to_tippees_claimed_before_ts_start(db, world: World, tap) -> None:
    world.participant("alice", balance="4.00", stripe="cus_a")
    world.participant("bob")
    world.participant("stub", claimed=None)
    world.participant("late", claimed=None)
    world.participant("crook", suspicious=True)
    world.participant("newbie", suspicious=None)
    world.tip("alice", "bob", "3.00")
    world.tip("alice", "stub", "50.00")
    world.tip("alice", "late", "50.00")
    world.tip("alice", "crook", "50.00")
    world.tip("alice", "newbie", "2.00")        # unreviewed tippees do receive
    pd = start(db)
    world.claim("late", pd["ts_start"] + timedelta(minutes=1))
    tap.results_eq("SELECT username, short, amount FROM payday.charges_due()", [("alice", D("1.00"), D("9.32"))])


def test_owed_uses_the_latest_tip_before_ts_start(db, world: World, tap) -> None:
    world.participant("alice", balance="4.00", stripe="cus_a")
    world.participant("bob")
    world.participant("carol")
    t0 = BASE + timedelta(days=1)
    world.tip("alice", "bob", "1.00", ctime=t0, mtime=t0)
    world.tip("alice", "bob", "10.00", ctime=t0, mtime=t0 + timedelta(days=1))
    world.tip("alice", "carol", "8.00", ctime=t0, mtime=t0)
    world.tip("alice", "carol", "0.00", ctime=t0, mtime=t0 + timedelta(days=2))  # stopped
    pd = start(db)
    world.tip("alice", "bob", "100.00", ctime=t0, mtime=pd["ts_start"] + timedelta(seconds=1))  # after start
    tap.results_eq("SELECT username, short FROM payday.charges_due()", [("alice", D("6.00"))])


def test_charges_due_ordered_by_claim_time(db, world: World, tap) -> None:
    world.participant("bob")
    for name in ["zed", "amy", "kim"]:
        world.participant(name, stripe=f"cus_{name}")
        world.tip(name, "bob", "1.00")
    start(db)
    tap.results_eq("SELECT username FROM payday.charges_due()", [("zed",), ("amy",), ("kim",)])
    tap.results_eq("SELECT participant FROM payday.charge_intents() ORDER BY id", [("zed",), ("amy",), ("kim",)])


def test_charge_intent_records_pre_and_is_idempotent(db, world: World, tap) -> None:
    world.participant("alice", balance="1.00", stripe="cus_a")
    world.participant("bob")
    world.tip("alice", "bob", "20.00")
    pd = start(db)
    xid = value(db, "SELECT payday.charge_intent('alice')")
    assert value(db, "SELECT payday.charge_intent('alice')") == xid
    assert value(db, "SELECT payday.charge_intent('alice', 'sandbox')") == xid
    x = row(db, "SELECT * FROM payday.exchanges")
    charge, fee = upcharge(D("19.00"))
    assert (x["participant"], x["amount"], x["fee"], x["status"], x["processor"], x["route"], x["payday_id"]) == (
        "alice", D("19.00"), fee, "pre", "stripe", "cus_a", pd["id"])
    assert x["amount"] + x["fee"] == charge
    assert x["idempotency_key"] == f"payday-{pd['id']}-exchange-{xid}"
    assert balance(db, "alice") == D("1.00"), "an intent moves no money"
    tap.results_eq("SELECT username FROM payday.charges_due()", [], "no longer due once an intent exists")
    tap.results_eq("SELECT * FROM payday.charge_intents()", [], "charge_intents makes no second intent")
    tap.results_eq("SELECT id FROM payday.pending_exchanges()", [(xid,)])


def test_charge_intent_processor_override(db, world: World, tap) -> None:
    world.participant("alice", balanced="/v1/accounts/a")
    world.participant("bob", stripe="cus_b")
    world.participant("carol")
    world.tip("alice", "carol", "1.00")
    world.tip("bob", "carol", "1.00")
    start(db)
    tap.results_eq("SELECT participant, processor, route FROM payday.charge_intents('sandbox') ORDER BY id",
                   [("alice", "sandbox", "/v1/accounts/a"), ("bob", "sandbox", "cus_b")])


def test_charge_intent_manual_processor(db, world: World, tap) -> None:
    world.participant("alice", stripe="cus_a")
    world.participant("bob")
    world.tip("alice", "bob", "1.00")
    start(db)
    xid = value(db, "SELECT payday.charge_intent('alice', 'manual')")
    tap.is_("SELECT processor FROM payday.exchanges WHERE id = %s", "manual", params=[xid])


@pytest.mark.parametrize("who, reason", [
    ("nofunding", "no funding source"),
    ("unreviewed", "not reviewed"),
    ("suspicious", "suspicious"),
    ("stub", "not claimed"),
    ("rich", "covers"),
    ("bob", "covers"),            # owes nothing at all
])
def test_charge_intent_refuses_who_is_not_due(db, world: World, tap, who: str, reason: str) -> None:
    _community(world)
    start(db)
    tap.throws_ok(f"SELECT payday.charge_intent('{who}')", "PD003", reason)


def test_charge_intent_refuses_a_late_claimer(db, world: World, tap) -> None:
    world.participant("bob")
    world.participant("late", claimed=None, stripe="cus_l")
    world.tip("late", "bob", "5.00")
    pd = start(db)
    world.claim("late", pd["ts_start"] + timedelta(minutes=1))
    tap.throws_ok("SELECT payday.charge_intent('late')", "PD003", "not claimed before the payday started")
    tap.results_eq("SELECT * FROM payday.charges_due()", [])


@pytest.mark.parametrize("ok", [True, False])
def test_charge_intent_refuses_once_charged(db, world: World, tap, ok: bool) -> None:
    world.participant("alice", stripe="cus_a")
    world.participant("bob")
    world.tip("alice", "bob", "50.00")
    start(db)
    xid = value(db, "SELECT payday.charge_intent('alice')")
    db.execute("SELECT payday.charge_outcome(%s, %s, %s)", (xid, ok, None if ok else "declined"))
    tap.throws_ok("SELECT payday.charge_intent('alice')", "PD003", "already charged")


def test_charge_success(db, world: World, tap) -> None:
    world.participant("alice", balance="1.00", stripe="cus_a")
    world.participant("bob")
    world.tip("alice", "bob", "20.00")
    pd = start(db)
    db.execute("UPDATE payday.participants SET last_bill_result = 'old failure'")
    xid = value(db, "SELECT payday.charge_intent('alice')")
    x = row(db, "SELECT * FROM payday.charge_outcome(%s, true, NULL, 'ch_123')", (xid,))
    charge, fee = upcharge(D("19.00"))
    assert (x["status"], x["error"], x["processor_ref"]) == ("succeeded", None, "ch_123")
    assert x["recorded_at"] is not None
    a = participant(db, "alice")
    assert (a["balance"], a["pending"], a["last_bill_result"]) == (D("20.00"), D("0.00"), "")
    c = counters(db, pd["id"])
    assert (c["ncharges"], c["charge_volume"], c["charge_fees_volume"], c["ncc_failing"]) == (1, charge, fee, 0)


def test_charge_failure(db, world: World, tap) -> None:
    world.participant("alice", balance="3.00", stripe="cus_a")
    world.participant("bob")
    world.tip("alice", "bob", "2.00")
    world.tip("alice", "bob", "20.00")
    pd = start(db)
    xid = value(db, "SELECT payday.charge_intent('alice')")
    x = row(db, "SELECT * FROM payday.charge_outcome(%s, false, 'Your card was declined.')", (xid,))
    assert (x["status"], x["error"]) == ("failed", "Your card was declined.")
    a = participant(db, "alice")
    assert (a["balance"], a["last_bill_result"]) == (D("3.00"), "Your card was declined.")
    c = counters(db, pd["id"])
    assert (c["ncharges"], c["charge_volume"], c["charge_fees_volume"], c["ncc_failing"]) == (0, 0, 0, 1)
    # Payday goes on with whatever balance there is.
    d = Driver(db)
    assert d.pay_tips()["ntips"] == 0       # 20.00 > 3.00: the only tip is uncovered
    d.clear(), d.finish()


@pytest.mark.parametrize("ok", [True, False])
def test_same_outcome_twice_is_a_no_op(db, world: World, tap, ok: bool) -> None:
    world.participant("alice", stripe="cus_a")
    world.participant("bob")
    world.tip("alice", "bob", "1.00")
    start(db)
    xid = value(db, "SELECT payday.charge_intent('alice')")
    err = None if ok else "declined"
    db.execute("SELECT payday.charge_outcome(%s, %s, %s)", (xid, ok, err))
    before = snapshot(db)
    db.execute("SELECT payday.charge_outcome(%s, %s, %s)", (xid, ok, err))
    db.execute("SELECT payday.charge_outcome(%s, %s, %s, 'other-ref')", (xid, ok, "another error" if err else None))
    tap.is_("SELECT payday.record_outcomes(ARRAY[%s]::bigint[], ARRAY[%s], ARRAY[%s]::text[])", 0,
            params=[xid, ok, err])
    assert snapshot(db) == before


@pytest.mark.parametrize("first", [True, False])
def test_contradicting_outcome_is_refused(db, world: World, tap, first: bool) -> None:
    world.participant("alice", stripe="cus_a")
    world.participant("bob")
    world.tip("alice", "bob", "1.00")
    start(db)
    xid = value(db, "SELECT payday.charge_intent('alice')")
    db.execute("SELECT payday.charge_outcome(%s, %s, %s)", (xid, first, None if first else "declined"))
    second = not first
    tap.throws_ok(f"SELECT payday.charge_outcome({xid}, {second}, {'NULL' if second else repr('x')})",
                  "PD002", "already recorded")
    tap.throws_ok(f"SELECT payday.record_outcomes(ARRAY[{xid}]::bigint[], ARRAY[{second}],"
                  f" ARRAY[{'NULL' if second else repr('x')}]::text[])", "PD002")


def test_record_outcomes_batch(db, world: World, tap) -> None:
    world.participant("bob")
    for name in ["a1", "a2", "a3"]:
        world.participant(name, balance="0.00", stripe=f"cus_{name}")
        world.tip(name, "bob", "10.00")
    pd = start(db)
    made = rows(db, "SELECT id, participant FROM payday.charge_intents() ORDER BY id")
    ids = [m["id"] for m in made]
    tap.is_("SELECT payday.record_outcomes(%s::bigint[], ARRAY[true, false, true], ARRAY[NULL, 'no', ''],"
            " ARRAY['r1', NULL, 'r3'])", 3, params=[ids])
    tap.results_eq("SELECT participant, status, error, processor_ref FROM payday.exchanges ORDER BY id", [
        ("a1", "succeeded", None, "r1"), ("a2", "failed", "no", None), ("a3", "succeeded", None, "r3")])
    charge, fee = upcharge(D("10.00"))
    c = counters(db, pd["id"])
    assert (c["ncharges"], c["charge_volume"], c["charge_fees_volume"], c["ncc_failing"]) == (
        2, 2 * charge, 2 * fee, 1)
    # Applying the same batch again applies nothing; a partly new batch applies the new part.
    tap.is_("SELECT payday.record_outcomes(%s::bigint[], ARRAY[true, false, true], ARRAY[NULL, 'no', NULL])",
            0, params=[ids])
    tap.is_("SELECT payday.record_outcomes(ARRAY[]::bigint[], ARRAY[]::boolean[])", 0, "empty batch")
    Driver(db).pay_tips()
    Driver(db).clear()
    Driver(db).finish()


def test_record_outcomes_mixes_charges_and_credits_only_by_their_own_phase(db, world: World, tap) -> None:
    """A batch may hold either kind; the outcome functions insist on theirs (55000)."""
    world.participant("alice", balance="0.00", stripe="cus_a")
    world.participant("bob", balance="30.00", balanced="/v1/accounts/b")
    world.tip("alice", "bob", "1.00")
    d = Driver(db)
    d.start()
    charge_id = value(db, "SELECT payday.charge_intent('alice')")
    tap.throws_ok(f"SELECT payday.credit_outcome({charge_id}, true)", "55000", "is a charge, not a credit")
    db.execute("SELECT payday.record_outcomes(ARRAY[%s]::bigint[], ARRAY[true])", (charge_id,))
    d.pay_tips(), d.clear()
    credit_id = value(db, "SELECT payday.credit_intent('bob')")
    tap.throws_ok(f"SELECT payday.charge_outcome({credit_id}, true)", "55000", "is a credit, not a charge")
    tap.is_(f"SELECT payday.record_outcomes(ARRAY[{credit_id}, {charge_id}]::bigint[], ARRAY[true, true])", 1)
    d.finish()


def test_charge_lands_in_balance_not_pending(db, world: World) -> None:
    world.participant("alice", stripe="cus_a")
    world.participant("bob")
    world.tip("alice", "bob", "1.00")
    start(db)
    xid = value(db, "SELECT payday.charge_intent('alice')")
    db.execute("SELECT payday.charge_outcome(%s, true)", (xid,))
    a = participant(db, "alice")
    assert (a["balance"], a["pending"]) == (D("9.32"), D("0.00"))
    d = Driver(db)
    d.pay_tips(), d.clear(), d.finish()
    assert balance(db, "alice") == D("8.32")


def test_outcome_text_is_normalised(db, world: World, tap) -> None:
    """An empty error with a success is no error; a failure's error is stored trimmed."""
    world.participant("alice", stripe="cus_a")
    world.participant("carol", stripe="cus_c")
    world.participant("bob")
    world.tip("alice", "bob", "1.00")
    world.tip("carol", "bob", "1.00")
    start(db)
    a = value(db, "SELECT payday.charge_intent('alice')")
    c = value(db, "SELECT payday.charge_intent('carol')")
    x = row(db, "SELECT * FROM payday.charge_outcome(%s, true, '', '')", (a,))
    assert (x["status"], x["error"], x["processor_ref"]) == ("succeeded", None, None)
    x = row(db, "SELECT * FROM payday.charge_outcome(%s, false, '  insufficient funds ')", (c,))
    assert (x["status"], x["error"]) == ("failed", "insufficient funds")
    assert participant(db, "carol")["last_bill_result"] == "insufficient funds"


def test_an_outcome_is_written_in_place(db, world: World, tap) -> None:
    """Schema 0009: no index of exchanges is keyed on status and its pages keep room, so
    recording an outcome is a heap-only (HOT) update: no new index entry per outcome."""
    world.participant("bob")
    payers = [f"payer{i:02d}" for i in range(12)]
    for name in payers:
        world.participant(name, balance="1.00", stripe=f"cus_{name}" + ("_fail" if name.endswith("3") else ""))
        world.tip(name, "bob", "5.00")
    start(db)
    made = rows(db, "SELECT id, route FROM payday.charge_intents()")
    assert len(made) == len(payers)
    tap.results_eq("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'payday.exchanges'::regclass "
                   "ORDER BY 1", [("payday.exchanges_one_per_kind_idx",), ("payday.exchanges_participant_idx",),
                                  ("payday.exchanges_pkey",)])
    with db.transaction():
        assert Driver(db).record([(x["id"], x["route"]) for x in made], "card declined") == len(payers)
        updated, hot = db.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
                                  "WHERE relid = 'payday.exchanges'::regclass").fetchone()
    assert (updated, hot) == (len(payers), len(payers))
    tap.results_eq("SELECT status, count(*)::int FROM payday.exchanges GROUP BY status ORDER BY status",
                   [("failed", 1), ("succeeded", len(payers) - 1)])
    tap.results_eq("SELECT id FROM payday.pending_exchanges()", [])


def _stale_exchange_statistics(db, world: World, payers: int) -> list[str]:
    """`payers` participants each due one charge, in an open payday; a batch of their
    intents made and rolled back, then vacuumed away with its pages kept (as autovacuum
    does when it cannot take the lock to truncate): payday.exchanges' statistics count
    pages and not one row on them."""
    world.participant("bob")
    names = [f"payer{i:03d}" for i in range(payers)]
    for name in names:
        world.participant(name, balance="0.00", stripe=f"cus_{name}")
        world.tip(name, "bob", "1.00")
    start(db)
    with db.transaction(force_rollback=True):
        assert value(db, "SELECT count(*) FROM payday.charge_intents()") == payers
    db.execute("VACUUM (TRUNCATE false) payday.exchanges")
    relpages, reltuples = db.execute("SELECT relpages, reltuples FROM pg_class "
                                     "WHERE oid = 'payday.exchanges'::regclass").fetchone()
    assert relpages > 0 and reltuples == 0
    return names


def _intents_one_by_one(db, names: list[str]) -> list[tuple[int, str]]:
    """A charge intent for each of `names` (exchange id, route), one charge_intent() call
    each, as a DBA would make them: unlike charge_intents(), nothing refreshes the
    statistics on the way."""
    return [(value(db, "SELECT payday.charge_intent(%s)", (name,)), f"cus_{name}") for name in names]


def test_outcomes_probe_by_id_when_the_statistics_say_there_are_no_exchanges(db, world: World, tap) -> None:
    """Schema 0011: record_outcomes() finds each exchange of its batch by its primary key
    even where the statistics say payday.exchanges holds nothing while it holds the
    payday's intents. Planned from those statistics, it read the whole primary key twice a
    call (the lock, ordered by id, and the update of the batch's rows) against the batch,
    and once more for the unknown ids: 840 entries here for 10 outcomes; at 1M, ~600 ms a
    call of 1,000 outcomes among 225,000 exchanges (bench/README.md, tenth round)."""
    names = _stale_exchange_statistics(db, world, 400)
    made = _intents_one_by_one(db, names)
    assert db.execute("SELECT reltuples FROM pg_class WHERE oid = 'payday.exchanges'::regclass").fetchone() == (0,)
    batch = made[:10]
    with db.transaction():
        assert Driver(db).record(batch, "card declined") == len(batch)
        probed = value(db, "SELECT pg_stat_get_xact_tuples_returned('payday.exchanges_pkey'::regclass)")
    # At most one primary-key entry per id for each of the statements that look the batch
    # up (the update of the batch's rows may read the table's few pages instead: at this
    # size, the cheaper plan).
    assert len(batch) <= probed <= 5 * len(batch)
    # The statistics were refreshed on the way: the next batches are planned from them.
    tap.is_("SELECT reltuples::int FROM pg_class WHERE oid = 'payday.exchanges'::regclass", len(names))
    tap.results_eq("SELECT count(*)::int FROM payday.exchanges WHERE status = 'pre'", [(len(names) - len(batch),)])


def test_outcomes_leave_statistics_alone_that_count_their_batch(db, world: World, tap) -> None:
    """Schema 0011: record_outcomes() refreshes the statistics of payday.exchanges only when
    they count fewer exchanges than its batch names: once they have seen the payday's
    intents, recording outcomes runs no ANALYZE."""
    names = _stale_exchange_statistics(db, world, 60)
    made = [(x["id"], x["route"]) for x in rows(db, "SELECT id, route FROM payday.charge_intents() ORDER BY id")]
    d = Driver(db)
    assert d.record(made[:1], "card declined") == 1  # 0 counted < 1 named: refreshed
    tap.is_("SELECT reltuples::int FROM pg_class WHERE oid = 'payday.exchanges'::regclass", len(names))
    analyzed = value(db, "SELECT analyze_count FROM pg_stat_user_tables WHERE relid = 'payday.exchanges'::regclass")
    assert d.record(made[1:], "card declined") == len(names) - 1
    db.execute("SELECT pg_stat_clear_snapshot()")
    tap.is_("SELECT analyze_count FROM pg_stat_user_tables WHERE relid = 'payday.exchanges'::regclass", analyzed)


def test_outcomes_do_not_wait_for_the_statistics(db, world: World, dsn: str, tap) -> None:
    """Schema 0011: while another session holds a lock that ANALYZE would wait for (a
    VACUUM, say), record_outcomes() records its batch at once, planned from the statistics
    as they are, instead of waiting for that session."""
    names = _stale_exchange_statistics(db, world, 60)
    made = _intents_one_by_one(db, names)
    with psycopg.connect(dsn, autocommit=False) as other:
        other.execute("LOCK TABLE payday.exchanges IN SHARE UPDATE EXCLUSIVE MODE")
        db.execute("SET statement_timeout = '10s'")  # a wait would end the test here, not hang it
        assert Driver(db).record(made, "card declined") == len(made)
        db.execute("RESET statement_timeout")
        other.rollback()
    tap.is_("SELECT reltuples::int FROM pg_class WHERE oid = 'payday.exchanges'::regclass", 0)
    tap.results_eq("SELECT count(*)::int FROM payday.exchanges WHERE status = 'pre'", [(0,)])

"""SPEC §4 step 8: who is paid out, how much, and what success and failure do."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from .world import BASE, D, Driver, World, balance, counters, participant, row, rows, snapshot, start, value


def _to_payout(db) -> None:
    d = Driver(db)
    d.start()
    d.charges()
    d.pay_tips()
    d.clear()


def test_credits_due_selection(db, world: World, tap) -> None:
    world.participant("rich", balance="50.00", balanced="/v1/accounts/rich")
    world.participant("ten", balance="10.00", balanced="/v1/accounts/ten")            # exactly the minimum
    world.participant("short", balance="9.99", balanced="/v1/accounts/short")         # below the minimum
    world.participant("stripeonly", balance="50.00", stripe="cus_s")                  # no bank account
    world.participant("unreviewed", balance="50.00", suspicious=None, balanced="/v1/accounts/u")
    world.participant("crook", balance="50.00", suspicious=True, balanced="/v1/accounts/c")
    world.participant("stub", balance="50.00", claimed=None, balanced="/v1/accounts/stub")
    world.participant("late", balance="50.00", claimed=None, balanced="/v1/accounts/late")
    world.participant("pledger", balance="30.00", balanced="/v1/accounts/p")
    world.participant("nobody", claimed=None)
    world.tip("pledger", "nobody", "15.00")         # kept for a pledge to an unclaimed tippee
    world.tip("pledger", "crook", "100.00")         # suspicious tippees are no obligation
    pd = start(db)
    world.claim("late", pd["ts_start"] + timedelta(minutes=1))
    d = Driver(db)
    d.pay_tips(), d.clear()
    tap.results_eq("SELECT * FROM payday.credits_due()", [
        ("rich", D("50.00"), D("0.00"), D("50.00"), D("49.70"), D("0.30"), "/v1/accounts/rich"),
        ("ten", D("10.00"), D("0.00"), D("10.00"), D("9.70"), D("0.30"), "/v1/accounts/ten"),
        ("pledger", D("30.00"), D("15.00"), D("15.00"), D("14.70"), D("0.30"), "/v1/accounts/p"),
    ])
    d.credits()
    d.finish()


def test_obligations_are_current_tips_including_changes_after_ts_start(db, world: World, tap) -> None:
    world.participant("alice", balance="40.00", balanced="/v1/accounts/a")
    world.participant("bob")
    world.participant("carol")
    t = BASE + timedelta(days=3)
    world.tip("alice", "bob", "5.00", ctime=t)
    world.tip("alice", "carol", "1.00", ctime=t)
    pd = start(db)
    after = pd["ts_start"] + timedelta(seconds=1)
    world.tip("alice", "bob", "12.00", ctime=t, mtime=after)     # raised after start: next week's obligation
    world.tip("alice", "carol", "0.00", ctime=t, mtime=after)    # stopped after start
    d = Driver(db)
    d.pay_tips(), d.clear()
    # Paid this week: 5.00 + 1.00; balance 34.00; obligations now 12.00.
    tap.results_eq("SELECT username, balance, obligations, payout FROM payday.credits_due()",
                   [("alice", D("34.00"), D("12.00"), D("22.00"))])
    d.credits(), d.finish()
    assert balance(db, "alice") == D("12.00")


@pytest.mark.parametrize("bal, obligations, due", [
    ("10.00", "0.00", True),
    ("9.99", "0.00", False),
    ("15.01", "5.01", True),
    ("15.00", "5.01", False),
    ("5.00", "10.00", False),      # negative payout
    ("10.00", "10.00", False),     # zero payout
])
def test_payout_boundary(db, world: World, tap, bal: str, obligations: str, due: bool) -> None:
    world.participant("alice", balance=bal, balanced="/v1/accounts/a")
    world.participant("stub", claimed=None)
    world.tip("alice", "stub", obligations)     # never paid (unclaimed), always an obligation
    _to_payout(db)
    tap.results_eq("SELECT username, payout FROM payday.credits_due()",
                   [("alice", D(bal) - D(obligations))] if due else [])
    Driver(db).credits()
    Driver(db).finish()
    assert balance(db, "alice") == (D(obligations) if due else D(bal))


def test_credit_success_takes_the_whole_payout(db, world: World, tap) -> None:
    world.participant("alice", balance="25.00", balanced="/v1/accounts/a")
    world.participant("bob")
    world.tip("alice", "bob", "5.00")
    _to_payout(db)
    pd = value(db, "SELECT id FROM payday.open_payday()")
    db.execute("UPDATE payday.participants SET last_ach_result = 'old'")
    xid = value(db, "SELECT payday.credit_intent('alice')")
    assert value(db, "SELECT payday.credit_intent('alice')") == xid, "idempotent while pre"
    x = row(db, "SELECT * FROM payday.exchanges WHERE id = %s", (xid,))
    # balance 20.00 after tips, obligations 5.00: payout 15.00, credit 14.70.
    assert (x["amount"], x["fee"], x["status"], x["processor"], x["route"]) == (
        D("-14.70"), D("0.30"), "pre", "balanced", "/v1/accounts/a")
    assert balance(db, "alice") == D("20.00"), "an intent moves no money"
    tap.results_eq("SELECT * FROM payday.credits_due()", [], "no longer due once an intent exists")
    x = row(db, "SELECT * FROM payday.credit_outcome(%s, true, NULL, 'cr_1')", (xid,))
    assert (x["status"], x["processor_ref"]) == ("succeeded", "cr_1")
    a = participant(db, "alice")
    assert (a["balance"], a["last_ach_result"]) == (D("5.00"), "")
    c = counters(db, pd)
    assert (c["nachs"], c["ach_volume"], c["ach_fees_volume"], c["nach_failing"]) == (1, D("-14.70"), D("0.30"), 0)
    tap.throws_ok("SELECT payday.credit_intent('alice')", "PD003", "already paid out")
    Driver(db).finish()


def test_credit_failure_leaves_the_balance_unchanged(db, world: World, tap) -> None:
    """The reference lost the money here (balance + credit - fee on failure too); not this one."""
    world.participant("alice", balance="25.00", balanced="/v1/accounts/a")
    _to_payout(db)
    pd = value(db, "SELECT id FROM payday.open_payday()")
    xid = value(db, "SELECT payday.credit_intent('alice')")
    x = row(db, "SELECT * FROM payday.credit_outcome(%s, false, 'account frozen')", (xid,))
    assert (x["status"], x["error"]) == ("failed", "account frozen")
    a = participant(db, "alice")
    assert (a["balance"], a["last_ach_result"]) == (D("25.00"), "account frozen")
    c = counters(db, pd)
    assert (c["nachs"], c["ach_volume"], c["ach_fees_volume"], c["nach_failing"]) == (0, 0, 0, 1)
    tap.throws_ok("SELECT payday.credit_intent('alice')", "PD003", "already paid out")
    tap.throws_ok(f"SELECT payday.credit_outcome({xid}, true)", "PD002")
    before = snapshot(db)
    db.execute("SELECT payday.credit_outcome(%s, false, 'account frozen')", (xid,))
    assert snapshot(db) == before, "same outcome twice is a no-op"
    Driver(db).finish()
    assert balance(db, "alice") == D("25.00")


def test_credit_intent_processor(db, world: World, tap) -> None:
    world.participant("alice", balance="25.00", balanced="/v1/accounts/a")
    world.participant("bob", balance="25.00", balanced="/v1/accounts/b")
    _to_payout(db)
    a = value(db, "SELECT payday.credit_intent('alice', 'sandbox')")
    b = value(db, "SELECT payday.credit_intent('bob', 'manual')")
    tap.results_eq("SELECT id, processor FROM payday.exchanges ORDER BY id", [(a, "sandbox"), (b, "manual")])
    db.execute("SELECT payday.record_outcomes(ARRAY[%s, %s]::bigint[], ARRAY[true, true])", (a, b))
    Driver(db).finish()


@pytest.mark.parametrize("who, reason", [
    ("short", "below the 10.00 minimum"),
    ("stripeonly", "no balanced_account_uri"),
    ("unreviewed", "not reviewed"),
    ("crook", "suspicious"),
    ("stub", "not claimed"),
    ("owes", "below the 10.00 minimum"),
])
def test_credit_intent_refuses_who_is_not_due(db, world: World, tap, who: str, reason: str) -> None:
    world.participant("short", balance="9.99", balanced="/v1/accounts/short")
    world.participant("stripeonly", balance="50.00", stripe="cus_s")
    world.participant("unreviewed", balance="50.00", suspicious=None, balanced="/v1/accounts/u")
    world.participant("crook", balance="50.00", suspicious=True, balanced="/v1/accounts/c")
    world.participant("stub", balance="50.00", claimed=None, balanced="/v1/accounts/stub")
    world.participant("owes", balance="50.00", balanced="/v1/accounts/o")
    world.tip("owes", "stub", "45.00")
    _to_payout(db)
    tap.throws_ok(f"SELECT payday.credit_intent('{who}')", "PD003", reason)
    Driver(db).finish()


def test_payout_uses_balances_after_clearing(db, world: World, tap) -> None:
    world.participant("alice", balance="30.00", stripe="cus_a")
    world.participant("bob", balance="0.00", balanced="/v1/accounts/b")
    world.tip("alice", "bob", "12.00")
    _to_payout(db)
    tap.results_eq("SELECT username, payout FROM payday.credits_due()", [("bob", D("12.00"))])
    Driver(db).credits()
    Driver(db).finish()
    tap.results_eq("SELECT username, balance FROM payday.participants ORDER BY 1",
                   [("alice", D("18.00")), ("bob", D("0.00"))])
    tap.results_eq("SELECT participant, amount, fee, status FROM payday.exchanges",
                   [("bob", D("-11.70"), D("0.30"), "succeeded")])


def test_credits_due_ordered_by_claim_time(db, world: World, tap) -> None:
    for name in ["zed", "amy", "kim"]:
        world.participant(name, balance="11.00", balanced=f"/v1/accounts/{name}")
    _to_payout(db)
    tap.results_eq("SELECT username FROM payday.credits_due()", [("zed",), ("amy",), ("kim",)])
    Driver(db).credits()
    Driver(db).finish()


# payday.credit_intents(usernames, processor): the set-based credit_intent.

CREDIT_COLUMNS = ("participant", "amount", "fee", "route", "processor", "status", "payday_id")


def _credit_intents(db, usernames: list[str], processor: str | None = None) -> list[dict]:
    return rows(db, "SELECT * FROM payday.credit_intents(%s::text[], %s)", (usernames, processor))


def _payout_world(world: World) -> list[str]:
    """Participants due a payout of various amounts, and some who are not; returns who is due."""
    world.participant("rich", balance="50.00", balanced="/v1/accounts/rich")
    world.participant("ten", balance="10.00", balanced="/v1/accounts/ten")
    world.participant("pledger", balance="30.00", balanced="/v1/accounts/p")
    world.participant("odd", balance="12.34", balanced="/v1/accounts/odd")
    world.participant("short", balance="9.99", balanced="/v1/accounts/short")
    world.participant("stripeonly", balance="50.00", stripe="cus_s")
    world.participant("crook", balance="50.00", suspicious=True, balanced="/v1/accounts/c")
    world.participant("nobody", claimed=None)
    world.tip("pledger", "nobody", "15.00")
    return ["rich", "ten", "pledger", "odd"]


@pytest.mark.parametrize("processor", [None, "sandbox", "manual"])
def test_credit_intents_records_what_credit_intent_would(db, world: World, processor: str | None) -> None:
    due = _payout_world(world)
    everyone = due + ["short", "stripeonly", "crook", "nobody"]
    _to_payout(db)

    def recorded() -> list[tuple]:
        return [tuple(x[c] for c in CREDIT_COLUMNS)
                for x in rows(db, "SELECT * FROM payday.exchanges WHERE kind = 'credit' ORDER BY participant")]

    with db.transaction():  # one credit_intent per due participant, rolled back
        for name in due:
            db.execute("SELECT payday.credit_intent(%s, %s)", (name, processor))
        one_by_one = recorded()
        raise psycopg.Rollback
    assert recorded() == []
    assert len(one_by_one) == 4 and {r[4] for r in one_by_one} == {processor or "balanced"}
    made = _credit_intents(db, everyone, processor)
    assert recorded() == one_by_one
    assert sorted(tuple(x[c] for c in CREDIT_COLUMNS) for x in made) == sorted(one_by_one)
    assert {x["participant"]: x["amount"] for x in made} == {
        "rich": D("-49.70"), "ten": D("-9.70"), "pledger": D("-14.70"), "odd": D("-12.04")}
    assert [x["id"] for x in made] == value(db, "SELECT array_agg(id ORDER BY id) FROM payday.exchanges")
    assert all(x["idempotency_key"] == f"payday-{x['payday_id']}-exchange-{x['id']}" for x in made)
    assert rows(db, "SELECT * FROM payday.credits_due()") == []
    Driver(db).record([(x["id"], x["route"]) for x in made], "refused")
    Driver(db).finish()
    assert balance(db, "rich") == D("0.00") and balance(db, "pledger") == D("15.00")


def test_credit_intents_is_idempotent(db, world: World) -> None:
    due = _payout_world(world)
    _to_payout(db)
    first = _credit_intents(db, due)
    before = snapshot(db)
    second = _credit_intents(db, due)
    assert second == first, "the same rows, pre, with the same ids"
    assert snapshot(db) == before, "nothing created or changed"
    assert _credit_intents(db, list(reversed(due))) == first, "ordered by id whatever the input order"
    Driver(db).record([(x["id"], x["route"]) for x in first], "refused")
    Driver(db).finish()


def test_credit_intents_leaves_out_who_is_not_due_and_duplicates(db, world: World) -> None:
    _payout_world(world)
    _to_payout(db)
    made = _credit_intents(db, ["short", "rich", "stripeonly", "rich", "crook", "nobody", "rich"])
    assert [x["participant"] for x in made] == ["rich"]
    got = rows(db, "SELECT participant, amount FROM payday.exchanges")
    assert got == [{"participant": "rich", "amount": D("-49.70")}], "one credit, nobody else's"
    assert _credit_intents(db, ["short", "crook"]) == []
    assert _credit_intents(db, []) == []
    assert value(db, "SELECT count(*) FROM payday.exchanges") == 1
    Driver(db).record([(made[0]["id"], made[0]["route"])], "refused")
    Driver(db).credits()
    Driver(db).finish()


def test_credit_intents_returns_earlier_pre_credits_with_the_new_ones(db, world: World) -> None:
    _payout_world(world)
    _to_payout(db)
    old = value(db, "SELECT payday.credit_intent('ten')")
    made = _credit_intents(db, ["odd", "ten", "rich", "short"])
    assert [(x["participant"], x["status"]) for x in made] == [("ten", "pre"), ("odd", "pre"), ("rich", "pre")]
    assert made[0]["id"] == old and made[0]["amount"] == D("-9.70")
    assert value(db, "SELECT count(*) FROM payday.exchanges WHERE participant = 'ten'") == 1
    # A pre credit is returned even to a call that asks for nobody new.
    assert [x["id"] for x in _credit_intents(db, ["ten"])] == [old]
    Driver(db).record([(x["id"], x["route"]) for x in made], "refused")
    Driver(db).credits()
    Driver(db).finish()


def test_credit_intents_ids_follow_the_input_order(db, world: World) -> None:
    for name in ["zed", "amy", "kim", "bea"]:  # claimed in this order
        world.participant(name, balance="11.00", balanced=f"/v1/accounts/{name}")
    _to_payout(db)
    made = _credit_intents(db, ["kim", "bea", "kim", "zed", "amy"])
    # Ordered by id, so the ids were taken in input order (first occurrence), not claim order.
    assert [x["participant"] for x in made] == ["kim", "bea", "zed", "amy"]
    assert len({x["id"] for x in made}) == 4
    Driver(db).record([(x["id"], x["route"]) for x in made], "refused")
    Driver(db).finish()


def test_credit_intents_refuses_a_batch_with_someone_already_paid_out(db, world: World, tap) -> None:
    _payout_world(world)
    _to_payout(db)
    paid = value(db, "SELECT payday.credit_intent('rich')")
    db.execute("SELECT payday.credit_outcome(%s, true)", (paid,))
    tap.throws_ok("SELECT * FROM payday.credit_intents(ARRAY['ten', 'rich', 'odd'])", "PD003",
                  rf"already paid out in payday \d+: rich \(exchange {paid}, succeeded\)")
    assert value(db, "SELECT count(*) FROM payday.exchanges") == 1, "all or nothing: no credit for ten or odd"
    Driver(db).credits()
    Driver(db).finish()


def test_credit_intents_outside_phase_payout(db, world: World, tap) -> None:
    due = _payout_world(world)
    tap.throws_ok("SELECT * FROM payday.credit_intents(ARRAY['rich'])", "55000", "no payday is open")
    d = Driver(db)
    d.start()
    tap.throws_ok("SELECT * FROM payday.credit_intents(ARRAY['rich'])", "55000", "is in phase payin")
    d.charges(), d.pay_tips()
    tap.throws_ok("SELECT * FROM payday.credit_intents(ARRAY['rich'])", "55000", "is in phase clear")
    d.clear()
    made = _credit_intents(db, due)
    d.record([(x["id"], x["route"]) for x in made], "refused")
    d.finish()
    tap.throws_ok("SELECT * FROM payday.credit_intents(ARRAY['rich'])", "55000", "no payday is open")

"""The append-only ledger, paydays written only by the functions, reverse_transfer, and the
invariants migration 0002 adds to payday.check()."""

from __future__ import annotations

import threading
from decimal import Decimal as D

import psycopg
import pytest

from .conftest import as_role, community, participant, sql_payday, sqlstate_of, tip, violations

# Payday 1's tip transfers of community(), by what they are: since 0006 their ids start at 2^40.
BOB_CAROL = "(SELECT id FROM payday.transfers WHERE payday_id = 1 AND tipper = 'bob' AND tippee = 'carol')"
DAVE_ALICE = "(SELECT id FROM payday.transfers WHERE payday_id = 1 AND tipper = 'dave' AND tippee = 'alice')"

# -- transfers and exchanges are append-only, even for the owner ---------------------------------


@pytest.mark.parametrize("query", [
    "UPDATE payday.transfers SET amount = amount + 1",
    "UPDATE payday.transfers SET amount = 0.01 WHERE id = (SELECT min(id) FROM payday.transfers)",
    "UPDATE payday.transfers SET \"timestamp\" = now() - interval '1 year'",
    "UPDATE payday.transfers SET payday_id = NULL",
    "UPDATE payday.transfers SET context = 'manual'",
    "UPDATE payday.transfers SET tippee = 'carol' WHERE tippee = 'alice'",  # money moved to someone else
    "UPDATE payday.transfers SET tipper = 'dave', tippee = 'bob' WHERE id = (SELECT min(id) FROM payday.transfers)",
    "DELETE FROM payday.transfers WHERE id = (SELECT min(id) FROM payday.transfers)",
    "TRUNCATE payday.transfers CASCADE",
    # The partitions themselves (0006): the payday's tip transfers and the ledger of the rest.
    "UPDATE payday.transfers_payday_1 SET amount = amount + 1",
    "DELETE FROM payday.transfers_payday_1",
    "TRUNCATE payday.transfers_payday_1 CASCADE",
    "TRUNCATE payday.transfers_ledger CASCADE",
    "UPDATE payday.exchanges SET amount = 100",
    "UPDATE payday.exchanges SET fee = 0",
    "UPDATE payday.exchanges SET status = 'failed', error = 'x'",  # outcomes are final
    "UPDATE payday.exchanges SET status = 'pre', recorded_at = NULL",
    "UPDATE payday.exchanges SET processor_ref = 'other'",
    "UPDATE payday.exchanges SET participant = 'carol' WHERE participant = 'alice'",
    "DELETE FROM payday.exchanges",
    "TRUNCATE payday.exchanges CASCADE",
    "TRUNCATE payday.participants CASCADE",
    "UPDATE payday.paydays SET ncharges = ncharges + 1",
    "UPDATE payday.paydays SET phase = 'payout', ts_end = payday.open_sentinel()",
    "UPDATE payday.paydays SET ts_start = now() - interval '8 days'",
    "DELETE FROM payday.paydays",
    "TRUNCATE payday.paydays CASCADE",
    "INSERT INTO payday.paydays (ts_start, ts_end, phase, ntransfers) VALUES (now(), now(), 'done', 1)",
])
def test_ledger_rows_never_change_even_for_the_owner(db: psycopg.Connection, tap, query: str) -> None:
    community(db)
    sql_payday(db)
    tap.throws_ok(query, "PD005")


def test_nothing_changes_the_paydays_by_hand(db: psycopg.Connection, tap) -> None:
    """Not a DO block, not an ad-hoc function, not a setting typed by hand: only the payday functions."""
    community(db)
    sql_payday(db)
    tap.throws_ok("DO $$ BEGIN UPDATE payday.paydays SET ncharges = 9; END $$", "PD005")
    db.execute("CREATE FUNCTION public.fix() RETURNS void LANGUAGE plpgsql AS "
               "$$ BEGIN UPDATE payday.paydays SET ncharges = 9; END $$")
    tap.throws_ok("SELECT public.fix()", "PD005")
    for setting in ("payday.writer", "payday.function"):
        with db.transaction():
            db.execute(f"SELECT set_config('{setting}', 'on', true)")
            with pytest.raises(psycopg.Error) as err:
                with db.transaction():
                    db.execute("UPDATE payday.paydays SET ncharges = 9")
            assert err.value.sqlstate == "PD005"
    # An empty payday row carries no figures: a direct INSERT of one is not refused.
    db.execute("INSERT INTO payday.paydays (ts_start, ts_end, phase) VALUES (now(), now(), 'done')")


def test_an_exchange_takes_its_outcome_once(db: psycopg.Connection, tap) -> None:
    community(db)
    sql_payday(db, until="payin", charge_ok=True)
    db.execute("SELECT payday.start()")
    # A second outcome, by hand or through the function, cannot change the first.
    (xid,) = db.execute("SELECT id FROM payday.exchanges WHERE participant = 'bob'").fetchone()  # type: ignore[misc]
    tap.throws_ok(f"UPDATE payday.exchanges SET status = 'failed', error = 'late' WHERE id = {xid}", "PD005")
    tap.throws_ok(f"SELECT payday.charge_outcome({xid}, false, 'late')", "PD002")
    assert db.execute(f"SELECT payday.record_outcomes('{{{xid}}}', '{{t}}')").fetchone() == (0,)  # a no-op


def test_the_pre_to_outcome_move_changes_only_the_outcome_columns(db: psycopg.Connection, tap) -> None:
    community(db)
    db.execute("SELECT payday.start()")
    (xid,) = db.execute("SELECT payday.charge_intent('bob', 'manual')").fetchone()  # type: ignore[misc]
    # Moving it and changing its amount at the same time is refused ...
    tap.throws_ok(f"UPDATE payday.exchanges SET status = 'succeeded', recorded_at = now(), amount = 500 WHERE id = {xid}",
                  "PD005")
    tap.throws_ok(f"UPDATE payday.exchanges SET error = 'x' WHERE id = {xid}", "PD005")  # pre stays pre
    # ... the move itself works, once.
    db.execute("SELECT payday.charge_outcome(%s, true, NULL, 'ch_1')", (xid,))
    assert db.execute("SELECT status, processor_ref FROM payday.exchanges WHERE id = %s", (xid,)).fetchone() == (
        "succeeded", "ch_1")
    tap.throws_ok(f"UPDATE payday.exchanges SET processor_ref = 'ch_2' WHERE id = {xid}", "PD005")


def test_the_exchange_columns_the_outcome_trigger_knows(db: psycopg.Connection) -> None:
    """exchanges_append_only's WHEN clause names every column the outcome move must keep: a new
    column of payday.exchanges must be added there (sql/schema/0002_hardening.sql), then here."""
    cols = {r[0] for r in db.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'payday.exchanges'::regclass "
                                     "AND attnum > 0 AND NOT attisdropped").fetchall()}
    kept = {"id", "timestamp", "participant", "amount", "fee", "processor", "route", "payday_id"}
    outcome = {"status", "error", "processor_ref", "recorded_at"}
    generated = {"kind", "idempotency_key"}
    assert cols == kept | outcome | generated


def test_a_rename_cascades_through_the_ledger(db: psycopg.Connection) -> None:
    community(db)
    sql_payday(db)
    with as_role(db, "payday_app"):
        db.execute("UPDATE payday.participants SET username = 'alicia' WHERE username = 'alice'")
    assert db.execute("SELECT count(*) FROM payday.transfers WHERE tippee = 'alicia'").fetchone() == (2,)
    assert db.execute("SELECT count(*) FROM payday.exchanges WHERE participant = 'alicia'").fetchone() == (1,)
    assert violations(db) == []


def test_reversals_are_append_only(db: psycopg.Connection, tap) -> None:
    community(db)
    sql_payday(db)
    db.execute(f"SELECT payday.reverse_transfer({BOB_CAROL}, 'test')")
    for q in ("UPDATE payday.reversals SET reason = 'other'", "DELETE FROM payday.reversals",
              "TRUNCATE payday.reversals"):
        tap.throws_ok(q, "PD005")


# -- reverse_transfer -------------------------------------------------------------------------------


def balances(db: psycopg.Connection) -> dict[str, tuple[D, D | None]]:
    return {u: (b, p) for u, b, p in db.execute("SELECT username, balance, pending FROM payday.participants")}


def test_reverse_transfer_outside_a_payday(db: psycopg.Connection) -> None:
    community(db)
    sql_payday(db)
    before = balances(db)
    (rid,) = db.execute(f"SELECT payday.reverse_transfer({BOB_CAROL}, '  tip sent by mistake ')").fetchone()  # type: ignore[misc]
    after = balances(db)
    assert after["carol"] == (before["carol"][0] - D("1.00"), None)
    assert after["bob"] == (before["bob"][0] + D("1.00"), None)
    assert db.execute("SELECT tipper, tippee, amount, payday_id, context FROM payday.transfers WHERE id = %s",
                      (rid,)).fetchone() == ("carol", "bob", D("1.00"), None, "manual")
    assert db.execute("SELECT transfer_id, reversal_id, reason FROM payday.reversals").fetchall() == [
        (db.execute(BOB_CAROL).fetchone()[0], rid, "tip sent by mistake")]  # type: ignore[index]


def test_reverse_transfer_during_a_payday_waits_in_pending_and_counts(db: psycopg.Connection) -> None:
    community(db)
    sql_payday(db)
    db.execute("SELECT payday.start()")  # a second payday, phase payin: received money goes to pending
    db.execute(f"SELECT payday.reverse_transfer({BOB_CAROL}, 'chargeback')")
    assert balances(db)["bob"] == (D("2.32"), D("1.00"))
    assert balances(db)["carol"] == (D("0.00"), D("0.00"))
    assert db.execute("SELECT ntransfers, transfer_volume FROM payday.paydays WHERE id = 2").fetchone() == (1, D("1.00"))
    sql_payday(db)  # and the payday goes on: bob's 1.00 clears with the tips


@pytest.mark.parametrize(("query", "sqlstate"), [
    ("SELECT payday.reverse_transfer(NULL, 'x')", "22004"),
    ("SELECT payday.reverse_transfer(1, NULL)", "22004"),
    ("SELECT payday.reverse_transfer(1, '   ')", "22023"),
    ("SELECT payday.reverse_transfer(-1, 'x')", "P0002"),
    ("SELECT payday.reverse_transfer(999, 'x')", "P0002"),
    (f"SELECT payday.reverse_transfer({DAVE_ALICE}, 'x')", "PD001"),  # alice was paid out: she cannot give 12.00 back
])
def test_reverse_transfer_bad_input(db: psycopg.Connection, tap, query: str, sqlstate: str) -> None:
    community(db)
    sql_payday(db)
    tap.throws_ok(query, sqlstate)


def test_a_transfer_is_reversed_once(db: psycopg.Connection, tap) -> None:
    community(db)
    sql_payday(db)
    (rid,) = db.execute(f"SELECT payday.reverse_transfer({BOB_CAROL}, 'x')").fetchone()  # type: ignore[misc]
    tap.throws_ok(f"SELECT payday.reverse_transfer({BOB_CAROL}, 'again')", "55000", f"already reversed by transfer {rid}")


def test_two_dbas_reverse_the_same_transfer_at_once(dsn: str, db: psycopg.Connection) -> None:
    community(db)
    sql_payday(db)
    barrier = threading.Barrier(2)
    results: list[object] = []

    def reverse() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            barrier.wait()
            try:
                results.append(conn.execute(f"SELECT payday.reverse_transfer({BOB_CAROL}, 'race')").fetchone()[0])  # type: ignore[index]
            except psycopg.Error as e:
                results.append(e.sqlstate)

    threads = [threading.Thread(target=reverse) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(map(str, results))[1] == "55000" and isinstance(min(results, key=str), int), results
    assert db.execute("SELECT count(*) FROM payday.reversals").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM payday.transfers WHERE tipper = 'carol'").fetchone() == (1,)


# -- what check() adds ---------------------------------------------------------------------------------


def test_check_reports_a_tip_to_a_suspicious_participant_until_reversed(db: psycopg.Connection) -> None:
    community(db)
    sql_payday(db, until="payout")
    # Found suspicious after the tips were paid: finish refuses until a DBA decides.
    db.execute("UPDATE payday.participants SET is_suspicious = true WHERE username = 'carol'")
    rows = violations(db)
    assert [(r[0], r[1]) for r in rows] == [("tip involving a suspicious participant", "bob -> carol")]
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT payday.finish()")
    assert err.value.sqlstate == "PD004" and "suspicious" in str(err.value)
    db.execute(f"SELECT payday.reverse_transfer({BOB_CAROL}, 'carol is a fraud')")
    assert violations(db) == []
    sql_payday(db)
    # Closed paydays are history: flagging someone later does not reopen them.
    db.execute("UPDATE payday.participants SET is_suspicious = true WHERE username = 'alice'")
    assert violations(db) == []


def test_check_reports_a_suspicious_tipper_and_every_tip_they_paid(db: psycopg.Connection) -> None:
    community(db)
    sql_payday(db, until="payout")
    db.execute("UPDATE payday.participants SET is_suspicious = true WHERE username = 'bob'")
    rows = violations(db)
    assert sorted((r[0], r[1]) for r in rows) == [("tip involving a suspicious participant", "bob -> alice"),
                                                  ("tip involving a suspicious participant", "bob -> carol")]
    # A manual transfer from someone suspicious is a DBA's decision, not a tip: not reported.
    db.execute("UPDATE payday.participants SET is_suspicious = false WHERE username = 'bob'")
    db.execute("UPDATE payday.participants SET is_suspicious = true WHERE username = 'dave'")
    assert [(r[0], r[1]) for r in violations(db)] == [("tip involving a suspicious participant", "dave -> alice")]
    db.execute("UPDATE payday.participants SET is_suspicious = false WHERE username = 'dave'")
    db.execute("SELECT payday.transfer('alice', 'carol', 1.00)")
    db.execute("UPDATE payday.participants SET is_suspicious = true WHERE username = 'carol'")
    assert [(r[0], r[1]) for r in violations(db)] == [("tip involving a suspicious participant", "bob -> carol")]
    db.execute("UPDATE payday.participants SET is_suspicious = false WHERE username = 'carol'")
    assert violations(db) == []


def test_ntippers_counts_people_who_tipped_not_manual_transfers(db: psycopg.Connection) -> None:
    community(db)
    pid = sql_payday(db, until="payout")
    # carol never tips; a manual transfer in the payday adds to ntransfers, not to ntippers.
    db.execute("SELECT payday.transfer('carol', 'alice', 0.50)")
    db.execute("SELECT payday.transfer('bob', 'dave', 0.25)")
    counters = db.execute("SELECT ntippers, ntips, ntransfers FROM payday.paydays WHERE id = %s", (pid,)).fetchone()
    assert counters == (2, 3, 5)
    assert violations(db) == []


@pytest.mark.corrupt
def test_check_reports_a_pre_exchange_outside_the_open_payday(db: psycopg.Connection) -> None:
    community(db)
    sql_payday(db, until="payin")
    with db.transaction():  # a payday closed behind the functions' back, with bob's charge still pre
        db.execute("SET LOCAL session_replication_role = replica")
        db.execute("UPDATE payday.exchanges SET status = 'pre', recorded_at = NULL, error = NULL")
        db.execute("UPDATE payday.participants SET balance = balance - 9.32 WHERE username = 'bob'")
        db.execute("UPDATE payday.paydays SET ncharges = 0, charge_volume = 0, charge_fees_volume = 0, "
                   "phase = 'done', ts_end = now()")
        db.execute("UPDATE payday.participants SET pending = NULL")
    rows = violations(db)
    assert [(r[0], r[1]) for r in rows] == [("pre exchange outside the open payday", "bob")], rows
    # pending_exchanges() lists the open payday's (none is open): the stray one is check()'s
    # to report, and the runner does not start on a violation.
    assert db.execute("SELECT count(*) FROM payday.pending_exchanges()").fetchone() == (0,)


@pytest.mark.corrupt
def test_check_reports_an_outcome_without_recorded_at(db: psycopg.Connection) -> None:
    community(db)
    sql_payday(db)
    with db.transaction():
        db.execute("ALTER TABLE payday.exchanges DROP CONSTRAINT exchanges_outcome_recorded")
        db.execute("SET LOCAL session_replication_role = replica")
        db.execute("UPDATE payday.exchanges SET recorded_at = NULL WHERE participant = 'alice'")
    rows = violations(db)
    assert [(r[0], r[1]) for r in rows] == [("exchange outcome not recorded consistently", "alice")], rows

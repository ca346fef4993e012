"""The references of payday.transfers (0003's statement triggers standing in for foreign keys),
and the one statement that may skip the check: payday.pay_tips() (0004)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from .conftest import community, participant, sql_payday, violations

INSERT = ("INSERT INTO payday.transfers (tipper, tippee, amount, payday_id, context) "
          "VALUES (%s, %s, 1, %s, %s)")


@pytest.mark.parametrize(("tipper", "tippee", "payday", "constraint"), [
    ("nobody", "alice", None, "transfers_tipper_fkey"),
    ("alice", "nobody", None, "transfers_tippee_fkey"),
    ("alice", "bob", 999, "transfers_payday_id_fkey"),
])
def test_a_missing_reference_is_refused_as_a_foreign_key_would(
        db: psycopg.Connection, tap, tipper: str, tippee: str, payday: int | None, constraint: str) -> None:
    community(db)
    err = tap.throws_ok(INSERT, "23503", "violates foreign key constraint",
                        params=(tipper, tippee, payday, "manual" if payday is None else "tip"))
    assert err.diag.constraint_name == constraint


def test_pay_tips_leaves_the_check_on_for_the_rest_of_its_transaction(db: psycopg.Connection) -> None:
    community(db)
    with pytest.raises(psycopg.errors.ForeignKeyViolation), db.transaction():
        sql_payday(db, until="clear")
        assert db.execute("SELECT count(*) FROM payday.transfers WHERE context = 'tip'").fetchone() != (0,)
        assert db.execute("SELECT current_setting('payday.tip_transfers_xact', true)").fetchone() == ("",)
        db.execute(INSERT, ("nobody", "alice", None, "manual"))


def test_the_marker_of_another_transaction_skips_nothing(db: psycopg.Connection) -> None:
    community(db)
    with pytest.raises(psycopg.errors.ForeignKeyViolation), db.transaction():
        old = db.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
        db.execute("SELECT set_config('payday.tip_transfers_xact', %s, false)", (str(int(old) - 1),))
        db.execute(INSERT, ("nobody", "alice", None, "manual"))


def test_pay_tips_references_only_rows_it_updates(db: psycopg.Connection) -> None:
    """What makes skipping the check sound: after pay_tips, every tipper and tippee of its
    transfers is a participant row written by that same transaction."""
    community(db)
    participant(db, "zed", days=None)  # a stub: tips to it are not paid
    with db.transaction():
        sql_payday(db, until="clear")
        rows = db.execute("""
            SELECT count(*) FILTER (WHERE p.username IS NULL),
                   count(*) FILTER (WHERE p.xmin <> pg_current_xact_id()::xid), count(*)
              FROM (SELECT tipper AS username FROM payday.transfers WHERE context = 'tip'
                    UNION SELECT tippee FROM payday.transfers WHERE context = 'tip') t
              LEFT JOIN payday.participants p USING (username)""").fetchone()
        assert rows is not None and rows[0] == 0 and rows[1] == 0 and rows[2] > 0
        raise psycopg.Rollback


def test_a_referenced_participant_cannot_be_deleted(db: psycopg.Connection, tap) -> None:
    community(db)
    with db.transaction():
        sql_payday(db, until="clear")
    tippee = db.execute("SELECT tippee FROM payday.transfers LIMIT 1").fetchone()[0]
    tap.throws_ok("DELETE FROM payday.participants WHERE username = %s", "23503", params=(tippee,))


def renamed_while(db: psycopg.Connection, dsn: str, work: Callable[[], None], function: str) -> None:
    """Runs `work` (something that calls payday.<function>) in a thread while the web
    application renames bob in a transaction it commits only once that call waits for one of
    the rows the rename locked: the call started before the rename was visible."""
    with psycopg.connect(dsn, options="-c lock_timeout=20s") as web:
        web.execute("UPDATE payday.participants SET username = 'roberto' WHERE username = 'bob'")
        worker = threading.Thread(target=work)
        worker.start()
        for _ in range(400):
            waiting = db.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND query LIKE %s AND datname = current_database() "
                                 "AND pid <> pg_backend_pid()", (f"%{function}(%",)).fetchone()
            if waiting == (1,):
                break
            time.sleep(0.05)
        else:
            web.rollback()
            worker.join(60)
            pytest.fail(f"{function}() never waited for the rename")
        web.commit()
        worker.join(120)


def test_a_rename_committed_during_pay_tips_makes_it_fail_and_rerun_clean(db: psycopg.Connection, dsn: str) -> None:
    """pay_tips() reads the tips in its snapshot; a tipper renamed by the web application in
    between commits before pay_tips() reaches the row, which its UPDATE then skips (the name
    it joins on is gone). Without a check that would insert a transfer from a name nobody has
    and leave the renamed tipper's balance untouched: money from nowhere. It must refuse
    instead (40001, nothing written), and a second call pays everyone under the new name."""
    community(db)
    sql_payday(db, until="payin")
    outcome: list[object] = []

    def pay() -> None:
        with psycopg.connect(dsn, autocommit=True, options="-c lock_timeout=20s") as runner:
            try:
                outcome.append(runner.execute("SELECT ntransfers FROM payday.pay_tips()").fetchone())
            except psycopg.Error as e:
                outcome.append(e)

    renamed_while(db, dsn, pay, "pay_tips")
    assert len(outcome) == 1 and isinstance(outcome[0], psycopg.Error), outcome
    err = outcome[0]
    assert err.sqlstate == "40001" and "again" in (err.diag.message_hint or ""), err
    assert db.execute("SELECT count(*) FROM payday.transfers").fetchone() == (0,)
    assert db.execute("SELECT phase FROM payday.paydays ORDER BY id DESC LIMIT 1").fetchone() == ("payin",)

    db.execute("SELECT * FROM payday.pay_tips()")
    tippers = {r[0] for r in db.execute("SELECT DISTINCT tipper FROM payday.transfers").fetchall()}
    assert tippers == {"roberto", "dave"}
    assert violations(db) == []


def test_the_runner_calls_pay_tips_again_after_a_concurrent_rename(
        db: psycopg.Connection, dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    from payday.run import run_payday

    community(db)
    sql_payday(db, until="payin")  # charges recorded: the runner resumes right before pay_tips
    results: list[object] = []
    with caplog.at_level(logging.WARNING, logger="payday.tests"):
        renamed_while(db, dsn, lambda: results.append(
            run_payday(dsn, processor_override="sandbox", concurrency=2, log=logging.getLogger("payday.tests"))),
            "pay_tips")
    assert len(results) == 1 and getattr(results[0], "status", None) == "finished", results
    assert any("pay_tips() refused" in r.getMessage() for r in caplog.records), caplog.text
    tippers = {r[0] for r in db.execute("SELECT DISTINCT tipper FROM payday.transfers").fetchall()}
    assert tippers == {"roberto", "dave"}
    assert violations(db) == []


def test_a_rename_during_record_outcomes_waits_and_credits_the_new_name(db: psycopg.Connection, dsn: str) -> None:
    """record_outcomes() locks its exchanges before it reads anything else, and a rename must
    cascade into them: it waits, then credits the renamed participant. Nothing to refuse."""
    community(db)
    db.execute("SELECT payday.start()")
    ids = [r[0] for r in db.execute("SELECT id FROM payday.charge_intents('manual')").fetchall()]
    charged = db.execute("SELECT amount FROM payday.exchanges WHERE participant = 'bob'").fetchone()
    assert ids and charged
    outcome: list[object] = []

    def record() -> None:
        with psycopg.connect(dsn, autocommit=True, options="-c lock_timeout=20s") as runner:
            outcome.append(runner.execute("SELECT payday.record_outcomes(%s::bigint[], %s::boolean[])",
                                          (ids, [True] * len(ids))).fetchone())

    renamed_while(db, dsn, record, "record_outcomes")
    assert outcome == [(len(ids),)]
    assert db.execute("SELECT balance FROM payday.participants WHERE username = 'roberto'").fetchone() == charged
    assert violations(db) == []

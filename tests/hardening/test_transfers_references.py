"""The references of payday.transfers (0003's statement triggers standing in for foreign keys),
and the one statement that may skip the check: payday.pay_tips() (0004)."""

from __future__ import annotations

import psycopg
import pytest

from .conftest import community, participant, sql_payday

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

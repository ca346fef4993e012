"""The references of payday.exchanges (0016's triggers standing in for its two foreign keys):
refused as a foreign key refuses, locked as it locks, cascaded as it cascaded."""

from __future__ import annotations

import psycopg
import pytest

from .conftest import community, participant, sql_payday, violations

INSERT = ("INSERT INTO payday.exchanges (participant, amount, fee, processor, route, payday_id) "
          "VALUES (%s, 10.00, 0.69, 'manual', 'cus_x', %s)")


def test_the_foreign_keys_are_triggers_now(db: psycopg.Connection) -> None:
    assert db.execute("SELECT count(*) FROM pg_constraint WHERE conrelid = 'payday.exchanges'::regclass "
                      "AND contype = 'f'").fetchone() == (0,)
    assert {r[0] for r in db.execute(
        "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE '%exchanges%'").fetchall()} >= {
        "exchanges_references_insert", "exchanges_references_update", "participants_rename_exchanges",
        "participants_exchanges_referenced", "paydays_exchanges_referenced"}


@pytest.mark.parametrize(("who", "payday", "constraint"), [
    ("nobody", 1, "exchanges_participant_fkey"),
    ("bob", 999, "exchanges_payday_id_fkey"),
])
def test_a_missing_reference_is_refused_as_a_foreign_key_would(
        db: psycopg.Connection, tap, who: str, payday: int, constraint: str) -> None:
    community(db)
    sql_payday(db)
    err = tap.throws_ok(INSERT, "23503", "violates foreign key constraint", params=(who, payday))
    assert err.diag.constraint_name == constraint
    assert err.diag.table_name == "exchanges"


def test_one_statement_of_many_rows_with_one_unknown_is_refused_whole(db: psycopg.Connection, tap) -> None:
    community(db)
    sql_payday(db)
    err = tap.throws_ok(
        "INSERT INTO payday.exchanges (participant, amount, fee, processor, route, payday_id) "
        "SELECT u, 10.00, 0.69, 'manual', 'cus_x', 1 FROM unnest(ARRAY['carol', 'dave', 'ghost']) u",
        "23503", "exchanges_participant_fkey")
    assert "(ghost)" in (err.diag.message_detail or "")


def test_the_referenced_participant_is_locked_until_the_insert_commits(db: psycopg.Connection, dsn: str) -> None:
    """FOR KEY SHARE, as a foreign key takes it: a delete (or a rename) of the participant
    waits for the transaction that recorded the exchange."""
    community(db)
    sql_payday(db)
    participant(db, "erin", days=10, scid="cus_erin")
    with db.transaction():
        db.execute(INSERT, ("erin", 1))
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute("SET lock_timeout = '300ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("DELETE FROM payday.participants WHERE username = 'erin'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("UPDATE payday.participants SET username = 'erin2' WHERE username = 'erin'")
            other.execute("UPDATE payday.participants SET balanced_account_uri = '/b/erin' WHERE username = 'erin'")
        raise psycopg.Rollback


def test_a_referenced_participant_or_payday_cannot_be_deleted(db: psycopg.Connection) -> None:
    community(db)
    pid = sql_payday(db, until="payin")  # its charges are exchanges; no transfer, no ledger mark yet
    participant(db, "erin", days=10)
    with db.transaction():
        db.execute(INSERT, ("erin", pid))  # an exchange, and no tip or transfer, names erin
        with pytest.raises(psycopg.errors.ForeignKeyViolation) as e, db.transaction():
            db.execute("DELETE FROM payday.participants WHERE username = 'erin'")
        assert e.value.diag.constraint_name == "exchanges_participant_fkey"
        # Paydays are written by their functions only; with that guard set aside, the
        # reference still holds.
        db.execute("ALTER TABLE payday.paydays DISABLE TRIGGER paydays_written_by_functions")
        with pytest.raises(psycopg.errors.ForeignKeyViolation) as e, db.transaction():
            db.execute("DELETE FROM payday.paydays WHERE id = %s", (pid,))
        assert e.value.diag.constraint_name == "exchanges_payday_id_fkey"
        raise psycopg.Rollback


def test_an_exchange_moved_to_an_unknown_name_is_refused(db: psycopg.Connection) -> None:
    """Only a rename's cascade changes an exchange's participant (the append-only trigger
    refuses the rest); with that trigger set aside, the reference is still checked."""
    community(db)
    sql_payday(db)
    with db.transaction():
        db.execute("ALTER TABLE payday.exchanges DISABLE TRIGGER exchanges_append_only")
        with pytest.raises(psycopg.errors.ForeignKeyViolation) as e, db.transaction():
            db.execute("UPDATE payday.exchanges SET participant = 'nobody' WHERE participant = 'bob'")
        assert e.value.diag.constraint_name == "exchanges_participant_fkey"
        raise psycopg.Rollback


def test_a_rename_cascades_into_exchanges_and_locks_no_payday(db: psycopg.Connection, dsn: str) -> None:
    """The cascade checks the new name only: the open payday's row stays free for the payday
    functions while the web application's rename is not committed."""
    community(db)
    sql_payday(db, until="payin")  # bob's charge is an exchange of the open payday
    with psycopg.connect(dsn) as web:
        web.execute("UPDATE payday.participants SET username = 'roberto' WHERE username = 'bob'")
        db.execute("SET lock_timeout = '2s'")
        try:
            assert db.execute("SELECT phase FROM payday.paydays ORDER BY id DESC LIMIT 1 FOR UPDATE").fetchone() == (
                "payin",)
        finally:
            db.execute("RESET lock_timeout")
        web.commit()
    assert db.execute("SELECT count(*) FROM payday.exchanges WHERE participant = 'roberto'").fetchone() == (1,)
    sql_payday(db)
    assert violations(db) == []


def test_truncating_participants_is_refused(db: psycopg.Connection, tap) -> None:
    community(db)
    sql_payday(db)
    tap.throws_ok("TRUNCATE payday.participants CASCADE", "PD005", "TRUNCATE refused")

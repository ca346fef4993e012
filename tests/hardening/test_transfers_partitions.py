"""payday.transfers partitioned by ranges of id (schema 0006): a payday's tip transfers are
a table of their own, filled, indexed and attached by pay_tips() in its one transaction."""

from __future__ import annotations

from decimal import Decimal as D

import psycopg
import pytest

from payday import migrate

from .conftest import as_role, community, participant, sql_payday, sqlstate_of, tip, violations

SPAN = 2**40
LEDGER = "SELECT id, tipper, tippee, amount, payday_id, context FROM payday.transfers ORDER BY id"


def partitions(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT i.inhrelid::regclass::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'payday.transfers'::regclass "
        "ORDER BY c.relname").fetchall()


def indexes(conn: psycopg.Connection, table: str) -> list[tuple[str, str | None, bool]]:
    """(index, the partitioned index it is a partition of or None, valid) of each index of `table`."""
    return conn.execute(
        "SELECT c.relname, p.relname, x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE x.indrelid = %s::regclass ORDER BY 1", (table,)).fetchall()


def test_a_paydays_tip_transfers_are_a_partition_of_their_own(db: psycopg.Connection) -> None:
    community(db)
    sql_payday(db)
    db.execute("SELECT payday.transfer('carol', 'dave', 0.50)")
    assert partitions(db) == [
        ("payday.transfers_ledger", "FOR VALUES FROM (MINVALUE) TO ('1099511627776')"),
        ("payday.transfers_payday_1", "FOR VALUES FROM ('1099511627776') TO ('2199023255552')")]
    # Paid in the window's order (tipper, ctime, tippee), numbered from 2^40 in that order.
    tips = db.execute("SELECT id, tipper, tippee, amount FROM payday.transfers_payday_1 ORDER BY id").fetchall()
    assert [t[1:] for t in tips] == [("bob", "alice", D("6.00")), ("bob", "carol", D("1.00")),
                                     ("dave", "alice", D("12.00"))]
    assert all(SPAN < t[0] < 2 * SPAN for t in tips)
    assert db.execute("SELECT tipper, tippee, context FROM payday.transfers_ledger").fetchall() == [
        ("carol", "dave", "manual")]
    # Its primary key is a partition of the partitioned table's; its tipper, tippee and
    # payday_id indexes are its own (schema 0015), built by the close. All valid.
    assert indexes(db, "payday.transfers_payday_1") == [
        ("transfers_payday_1_payday_idx", None, True),
        ("transfers_payday_1_pkey", "transfers_pkey", True),
        ("transfers_payday_1_tippee_idx", None, True),
        ("transfers_payday_1_tipper_idx", None, True)]
    assert [r[:2] for r in indexes(db, "payday.transfers_ledger")] == [
        ("transfers_ledger_payday_idx", None), ("transfers_ledger_pkey", "transfers_pkey"),
        ("transfers_ledger_tippee_idx", None), ("transfers_ledger_tipper_idx", None)]
    # The next payday gets the next range; the reading roles read both through the parent.
    sql_payday(db)
    assert [p[0] for p in partitions(db)][-1] == "payday.transfers_payday_2"
    assert db.execute("SELECT min(id) > %s FROM payday.transfers WHERE payday_id = 2", (2 * SPAN,)).fetchone() == (True,)
    with as_role(db, "payday_readonly"):
        assert db.execute("SELECT count(*) FROM payday.transfers_payday_2").fetchone() == (3,)
        assert db.execute("SELECT count(*) FROM payday.transfers").fetchone() == (7,)
    assert violations(db) == []


def test_the_partitions_other_indexes_come_after_pay_tips(db: psycopg.Connection) -> None:
    """pay_tips() attaches the partition with its primary key only; payday.index_tip_transfers()
    builds the tipper, tippee and payday_id indexes (once: a second call finds them), the
    runner's role may call it, and finish() builds them when nobody did."""
    community(db)
    pid = sql_payday(db, until="clear")
    table = f"payday.transfers_payday_{pid}"
    assert indexes(db, table) == [(f"transfers_payday_{pid}_pkey", "transfers_pkey", True)]
    # Reads through the partitioned table find the payday's transfers meanwhile.
    assert db.execute("SELECT count(*) FROM payday.transfers WHERE tipper = 'bob'").fetchone() == (2,)
    with as_role(db, "payday_runner"):
        assert db.execute("SELECT payday.index_tip_transfers(%s)", (pid,)).fetchone() == (3,)
        assert db.execute("SELECT payday.index_tip_transfers(%s)", (pid,)).fetchone() == (0,)
    assert [r[0] for r in indexes(db, table)] == [
        f"transfers_payday_{pid}_payday_idx", f"transfers_payday_{pid}_pkey",
        f"transfers_payday_{pid}_tippee_idx", f"transfers_payday_{pid}_tipper_idx"]
    with db.transaction():  # a search by tippee through the partitioned table uses it
        db.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in db.execute(
            "EXPLAIN (COSTS OFF) SELECT * FROM payday.transfers WHERE tippee = 'alice'").fetchall())
    assert f"transfers_payday_{pid}_tippee_idx" in plan and "transfers_ledger_tippee_idx" in plan
    sql_payday(db)
    # The next payday: nobody builds them before the close, finish() does.
    pid2 = sql_payday(db, until="payout")
    assert len(indexes(db, f"payday.transfers_payday_{pid2}")) == 1
    sql_payday(db)
    assert all(valid for _, _, valid in indexes(db, f"payday.transfers_payday_{pid2}"))
    assert len(indexes(db, f"payday.transfers_payday_{pid2}")) == 4
    assert violations(db) == []


def test_index_tip_transfers_locks_the_table_only_to_build(db: psycopg.Connection, dsn: str) -> None:
    """With an index missing it takes the table in SHARE ROW EXCLUSIVE mode, so it waits for a
    writer of the table (a rename rewriting transfers); with all three there it returns at once."""
    community(db)
    pid = sql_payday(db, until="clear")
    with psycopg.connect(dsn) as writer:
        writer.execute(f"LOCK TABLE payday.transfers_payday_{pid} IN ROW EXCLUSIVE MODE")
        db.execute("SET lock_timeout = '300ms'")
        try:
            assert sqlstate_of(db, "SELECT payday.index_tip_transfers(%s)", (pid,)) == "55P03"
        finally:
            db.execute("RESET lock_timeout")
        writer.rollback()
    assert db.execute("SELECT payday.index_tip_transfers(%s)", (pid,)).fetchone() == (3,)
    with psycopg.connect(dsn) as writer:
        writer.execute(f"LOCK TABLE payday.transfers_payday_{pid} IN ROW EXCLUSIVE MODE")
        db.execute("SET lock_timeout = '300ms'")
        try:
            assert db.execute("SELECT payday.index_tip_transfers(%s)", (pid,)).fetchone() == (0,)
        finally:
            db.execute("RESET lock_timeout")
        writer.rollback()
    sql_payday(db)
    assert violations(db) == []


@pytest.mark.parametrize("function", ["attach_tip_transfers", "index_tip_transfers"])
def test_a_paydays_table_function_refuses_a_bad_id_or_no_table(db: psycopg.Connection, function: str) -> None:
    community(db)
    sql_payday(db)
    assert sqlstate_of(db, f"SELECT payday.{function}(NULL)") == "22004"
    assert sqlstate_of(db, f"SELECT payday.{function}(0)") == "22023"
    assert sqlstate_of(db, f"SELECT payday.{function}(9)") == "42P01"


def test_index_tip_transfers_wants_the_table_attached(db: psycopg.Connection) -> None:
    community(db)
    sql_payday(db)
    db.execute("CREATE TABLE payday.transfers_payday_9 (LIKE payday.transfers INCLUDING DEFAULTS)")
    assert sqlstate_of(db, "SELECT payday.index_tip_transfers(9)") == "55000"  # not attached: a DBA looks first
    db.execute("DROP TABLE payday.transfers_payday_9")
    for role in ("payday_app", "payday_readonly"):
        with as_role(db, role):
            assert sqlstate_of(db, "SELECT payday.index_tip_transfers(1)") == "42501"


def test_tip_transfer_ids_are_dense(db: psycopg.Connection) -> None:
    """Ids count the paid tips only, from 2^40 + 1: a tipper's tips it cannot pay, and the
    tips of a tipper who pays none, leave no gap (their order is not a contract)."""
    for name, days in (("ann", 50), ("ben", 49), ("cat", 48), ("dan", 47), ("eve", 46)):
        participant(db, name, days=days)
    db.execute("UPDATE payday.participants SET balance = 10, opening_balance = 10 WHERE username IN ('ann', 'dan')")
    tip(db, "ann", "cat", "6.00", days=30)   # paid
    tip(db, "ann", "ben", "6.00", days=29)   # 12.00 > 10.00: not paid
    tip(db, "ann", "eve", "3.00", days=28)   # not paid either (the first tip ann cannot cover stops her)
    tip(db, "ben", "ann", "1.00", days=27)   # ben holds nothing and has no card: none paid
    tip(db, "dan", "eve", "3.00", days=26)   # paid
    tip(db, "dan", "ann", "1.00", days=25)   # paid (dan: 4.00 of 10.00)
    sql_payday(db)
    rows = db.execute("SELECT id - %s, tipper, tippee FROM payday.transfers_payday_1 ORDER BY id", (SPAN,)).fetchall()
    assert [r[0] for r in rows] == [1, 2, 3]
    assert sorted(r[1:] for r in rows) == [("ann", "cat"), ("dan", "ann"), ("dan", "eve")]
    assert violations(db) == []


def test_a_partition_is_append_only_on_its_own(db: psycopg.Connection) -> None:
    community(db)
    sql_payday(db)
    for q in ("UPDATE payday.transfers_payday_1 SET amount = 0.01",
              "DELETE FROM payday.transfers_payday_1",
              "INSERT INTO payday.transfers_payday_1 (id, tipper, tippee, amount, payday_id, context) "
              "VALUES (1, 'bob', 'alice', 1, 1, 'tip')"):  # outside the payday's ids
        assert sqlstate_of(db, q) in ("PD005", "23514"), q
    # TRUNCATE, refused by the partition's own trigger once the foreign key lets it through.
    assert sqlstate_of(db, "ALTER TABLE payday.reversals DROP CONSTRAINT reversals_transfer_id_fkey; "
                           "ALTER TABLE payday.reversals DROP CONSTRAINT reversals_reversal_id_fkey; "
                           "TRUNCATE payday.transfers_payday_1") == "PD005"
    assert db.execute("SELECT count(*) FROM payday.transfers_payday_1").fetchone() == (3,)


def test_pay_tips_refuses_a_table_in_its_partitions_place(db: psycopg.Connection) -> None:
    community(db)
    pid = sql_payday(db, until="payin")
    db.execute(f"CREATE TABLE payday.transfers_payday_{pid} (x int)")
    before = db.execute("SELECT username, balance, pending FROM payday.participants ORDER BY 1").fetchall()
    assert sqlstate_of(db, "SELECT * FROM payday.pay_tips()") == "42P07"
    assert db.execute("SELECT username, balance, pending FROM payday.participants ORDER BY 1").fetchall() == before
    assert db.execute("SELECT phase FROM payday.paydays WHERE id = %s", (pid,)).fetchone() == ("payin",)
    db.execute(f"DROP TABLE payday.transfers_payday_{pid}")  # a DBA looked at it
    sql_payday(db)
    assert violations(db) == []


def test_attach_tip_transfers_checks_what_it_is_given(db: psycopg.Connection) -> None:
    community(db)
    sql_payday(db)
    assert sqlstate_of(db, "SELECT payday.attach_tip_transfers(1)") == "55000"
    db.execute("CREATE TABLE payday.transfers_payday_9 (LIKE payday.transfers INCLUDING ALL)")
    db.execute("INSERT INTO payday.transfers_payday_9 (id, tipper, tippee, amount, payday_id, context) "
               "VALUES (5, 'bob', 'alice', 1, 1, 'tip')")
    assert sqlstate_of(db, "SELECT payday.attach_tip_transfers(9)") == "23514"  # id 5 is not payday 9's
    db.execute("DROP TABLE payday.transfers_payday_9")
    with as_role(db, "payday_runner"):
        assert sqlstate_of(db, "SELECT payday.attach_tip_transfers(1)") == "42501"


def test_upgrade_from_0005_keeps_every_transfer_and_goes_back(empty_dsn: str) -> None:
    """A ledger written at 0005 becomes the first partition; paydays at 0006 get partitions;
    going back to 0005 folds them into one table again, and going up again splits them out."""
    migrate.upgrade(empty_dsn, "0005")
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        community(conn)
        sql_payday(conn)  # head's pay_tips on the plain table of 0005
        conn.execute("SELECT payday.reverse_transfer((SELECT max(id) FROM payday.transfers WHERE tippee = 'carol'), 'x')")
        at_0005 = conn.execute(LEDGER).fetchall()
        assert len(at_0005) == 4 and max(r[0] for r in at_0005) < SPAN
    migrate.upgrade(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        assert conn.execute(LEDGER).fetchall() == at_0005
        assert [p[0] for p in partitions(conn)] == ["payday.transfers_ledger"]
        sql_payday(conn)
        reversed_tip = conn.execute(
            "SELECT id FROM payday.transfers WHERE payday_id = 2 AND tippee = 'carol'").fetchone()[0]  # type: ignore[index]
        conn.execute("SELECT payday.reverse_transfer(%s, 'y')", (reversed_tip,))  # across partitions
        at_0006 = conn.execute(LEDGER).fetchall()
        assert violations(conn) == []
    migrate.downgrade(empty_dsn, "0005")
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'payday.transfers'::regclass").fetchone() == ("r",)
        assert conn.execute(LEDGER).fetchall() == at_0006
        assert conn.execute("SELECT count(*) FROM payday.reversals r JOIN payday.transfers t ON t.id = r.transfer_id"
                            ).fetchone() == (2,)
        assert sqlstate_of(conn, "DELETE FROM payday.transfers") == "PD005"
        assert violations(conn) == []
        sql_payday(conn)  # a payday at 0005 again, into the plain table
        at_0005_again = conn.execute(LEDGER).fetchall()
    migrate.upgrade(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        assert conn.execute(LEDGER).fetchall() == at_0005_again
        assert [p[0] for p in partitions(conn)] == ["payday.transfers_ledger", "payday.transfers_payday_2"]
        assert violations(conn) == []
        sql_payday(conn)
        assert [p[0] for p in partitions(conn)][-1] == "payday.transfers_payday_4"
        assert violations(conn) == []

"""Migrations: upgrade, downgrade, idempotence, the alembic CLI, and what the wheel carries."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from decimal import Decimal
from importlib import resources
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from payday import migrate

REPO = Path(__file__).resolve().parents[1]
TABLES = {"participants", "tips", "transfers", "exchanges", "paydays"}


def query(dsn: str, sql: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def replace_body(dsn: str, signature: str, body: str, new_body: str) -> None:
    """Redefines the function `signature` with `new_body` in place of `body`, as an older
    release would have defined it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT set_config('check_function_bodies', 'off', false)")
        definition = conn.execute("SELECT pg_get_functiondef(%s::regprocedure)", (signature,)).fetchone()[0]  # type: ignore[index]
        conn.execute(definition.replace(body, new_body))


def alice_tips_bob(conn: psycopg.Connection) -> None:
    """Two whitelisted participants, alice (1.00 and a card) tipping bob 5.00."""
    conn.execute("INSERT INTO payday.participants (username, claimed_time, is_suspicious, balance, "
                 "stripe_customer_id) VALUES ('alice', '2013-04-01', false, 1.00, 'cus_a'), "
                 "('bob', '2013-04-01', false, 0, NULL)")
    conn.execute("INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) "
                 "VALUES ('2013-04-02', '2013-04-02', 'alice', 'bob', 5.00)")


def schemas(dsn: str) -> set[str]:
    return {r[0] for r in query(dsn, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'payday%'")}


def catalog(dsn: str) -> list[tuple]:
    """Every object of schema payday with its oid: unchanged oids mean nothing was re-created."""
    return query(dsn, """
        SELECT 'rel', c.oid::bigint, c.relname FROM pg_class c WHERE c.relnamespace = 'payday'::regnamespace
        UNION ALL
        SELECT 'proc', p.oid::bigint, p.oid::regprocedure::text FROM pg_proc p
         WHERE p.pronamespace = 'payday'::regnamespace
        ORDER BY 1, 2""")


def shipped_function_names() -> set[str]:
    root = resources.files("payday.sql") / "functions"
    names: set[str] = set()
    for concern in root.iterdir():
        if concern.is_dir():
            for f in concern.iterdir():
                if f.name.endswith(".sql"):
                    names |= set(re.findall(r"CREATE\s+OR\s+REPLACE\s+FUNCTION\s+payday\.(\w+)", f.read_text(), re.I))
    return names


def test_upgrade_creates_schema_and_functions(empty_dsn: str) -> None:
    assert migrate.current(empty_dsn) is None
    migrate.upgrade(empty_dsn)
    assert migrate.current(empty_dsn) == migrate.head()
    tables = {r[0] for r in query(empty_dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'payday'")}
    assert TABLES <= tables
    loaded = {r[0] for r in query(empty_dsn, "SELECT proname FROM pg_proc WHERE pronamespace = 'payday'::regnamespace")}
    missing = shipped_function_names() - loaded
    assert not missing, f"function files that did not create their function: {sorted(missing)}"


def test_downgrade_to_base_removes_schema(empty_dsn: str) -> None:
    migrate.upgrade(empty_dsn)
    migrate.downgrade(empty_dsn, "base")
    assert schemas(empty_dsn) == set()
    assert migrate.current(empty_dsn) is None
    migrate.upgrade(empty_dsn)  # and back up again
    assert "payday" in schemas(empty_dsn)


def test_upgrade_twice_is_a_noop(empty_dsn: str) -> None:
    migrate.upgrade(empty_dsn)
    before = catalog(empty_dsn)
    migrate.upgrade(empty_dsn)
    assert catalog(empty_dsn) == before
    assert migrate.current(empty_dsn) == migrate.head()


@pytest.mark.parametrize("base, revision, function, head_marker, old_marker", [
    # 0005: check() looks up the open payday's suspicious tips through the indexes (its body
    # is check_ledger()'s since 0010).
    ("0004", "head", "payday.check_ledger(boolean)", "ANY (suspicious)", "ANY (suspicious) AND 0005 IS NOT NULL"),
    # 0007: ids numbered in the insert's one pass, not by a second window.
    ("0006", "0007", "payday.pay_tips()", "row_number() OVER ()", "row_number() OVER (ORDER BY tipper, tippee)"),
    # 0008: only the short tippers' tips sorted.
    ("0007", "0008", "payday.pay_tips()", "pays_all", "pays_every_tip"),
    # 0011: record_outcomes() refreshes statistics that count fewer exchanges than its batch.
    ("0010", "0011", "payday.record_outcomes(bigint[],boolean[],text[],text[])", "ANALYZE (SKIP_LOCKED) payday.exchanges",
     "NULL"),
    # 0013: check_ledger() checks the balances and the counters in one statement.
    ("0012", "0013", "payday.check_ledger(boolean)", "SELECT p.tipper, -p.transfer_volume FROM per_tipper p",
     "SELECT p.tipper, -p.transfer_volume FROM per_tipper p WHERE true"),
    # 0014: pay_tips() sums what tippees receive apart from what tippers pay.
    ("0013", "0014", "payday.pay_tips()", "FROM due GROUP BY tippee", "FROM due WHERE true GROUP BY tippee"),
    # 0015: finish() builds the tip transfers' indexes pay_tips() no longer builds.
    ("0014", "0015", "payday.finish()", "PERFORM payday.index_tip_transfers(pd.id);", "NULL;"),
])
def test_upgrade_brings_head_function_bodies(empty_dsn: str, base: str, revision: str, function: str,
                                             head_marker: str, old_marker: str) -> None:
    """0005, 0007, 0008, 0011, 0013, 0014 and 0015 change function bodies (0013 a view too): a database deployed at the revision
    before, with that release's body of `function` (stood for by head's with a marker
    changed), gets head's when it upgrades, and keeps it (harmlessly) when it goes back."""
    migrate.upgrade(empty_dsn, base)
    body = f"SELECT prosrc FROM pg_proc WHERE oid = '{function}'::regprocedure"
    head_body = query(empty_dsn, body)[0][0]
    assert head_marker in head_body
    old_body = head_body.replace(head_marker, old_marker)
    replace_body(empty_dsn, function, head_body, old_body)
    assert query(empty_dsn, body)[0][0] == old_body
    migrate.upgrade(empty_dsn, revision)
    assert migrate.current(empty_dsn) == (migrate.head() if revision == "head" else revision)
    assert query(empty_dsn, body)[0][0] == head_body
    migrate.downgrade(empty_dsn, base)
    assert query(empty_dsn, body)[0][0] == head_body
    assert query(empty_dsn, "SELECT count(*) FROM payday.check()") == [(0,)]


def test_0009_drops_the_status_indexes_of_exchanges_and_downgrades(empty_dsn: str) -> None:
    """0009: no index of exchanges keyed on status (an outcome is then a HOT update), none
    on idempotency_key (the primary key makes it unique), half of each new page left free;
    a pre exchange made at 0008 is still found and recorded after the upgrade, and the
    downgrade puts both indexes back over the rows present."""
    def indexes() -> set[str]:
        return {r[0] for r in query(empty_dsn, "SELECT indexrelid::regclass::text FROM pg_index "
                                               "WHERE indrelid = 'payday.exchanges'::regclass")}

    def options() -> list[str] | None:
        return query(empty_dsn, "SELECT reloptions FROM pg_class WHERE oid = 'payday.exchanges'::regclass")[0][0]

    dropped = {"payday.exchanges_pre_idx", "payday.exchanges_idempotency_key_idx"}
    migrate.upgrade(empty_dsn, "0008")
    assert dropped <= indexes() and options() is None
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        alice_tips_bob(conn)
        conn.execute("SELECT payday.start()")
        (xid,) = conn.execute("SELECT payday.charge_intent('alice')").fetchone()  # type: ignore[misc]
    migrate.upgrade(empty_dsn, "0009")
    assert indexes() & dropped == set() and options() == ["fillfactor=50"]
    assert query(empty_dsn, "SELECT id, status FROM payday.pending_exchanges()") == [(xid, "pre")]
    query(empty_dsn, f"SELECT payday.record_outcomes(ARRAY[{xid}]::bigint[], ARRAY[true])")
    assert query(empty_dsn, "SELECT count(*) FROM payday.pending_exchanges()") == [(0,)]
    migrate.downgrade(empty_dsn, "0008")
    assert dropped <= indexes() and options() is None
    assert query(empty_dsn, "SELECT indisunique FROM pg_index "
                            "WHERE indexrelid = 'payday.exchanges_idempotency_key_idx'::regclass") == [(True,)]
    assert query(empty_dsn, "SELECT count(*) FROM payday.check()") == [(0,)]
    migrate.upgrade(empty_dsn)
    assert migrate.current(empty_dsn) == migrate.head() and indexes() & dropped == set()


def test_0010_marks_the_ledger_at_each_close_and_downgrades(empty_dsn: str) -> None:
    """0010: finish() marks every balance, check_recent() starts from the mark, a rename
    follows into it; downgraded, the tables and the trigger are gone, and head's functions
    check the whole history and mark nothing."""
    def payday(conn: psycopg.Connection) -> None:
        conn.execute("SELECT payday.start()")
        conn.execute("SELECT payday.charge_intents('manual')")
        conn.execute("SELECT payday.record_outcomes(coalesce(array_agg(id), '{}'), coalesce(array_agg(true), '{}')) "
                     "FROM payday.pending_exchanges()")
        conn.execute("SELECT * FROM payday.pay_tips()")
        conn.execute("SELECT payday.clear_pending()")
        conn.execute("SELECT * FROM payday.finish()")

    def tables() -> set[str]:
        return {r[0] for r in query(empty_dsn, "SELECT relname FROM pg_class WHERE relnamespace = 'payday'::regnamespace "
                                               "AND relname LIKE 'ledger_mark%' AND relkind = 'r'")}

    def rename_trigger() -> list[tuple]:
        return query(empty_dsn, "SELECT tgname FROM pg_trigger WHERE tgname = 'participants_rename_mark'")

    migrate.upgrade(empty_dsn, "0009")
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        alice_tips_bob(conn)
        payday(conn)  # at 0009: nothing to mark
        migrate.upgrade(empty_dsn, "0010")
        assert tables() == {"ledger_marks", "ledger_mark"} and rename_trigger() == [("participants_rename_mark",)]
        assert query(empty_dsn, "SELECT count(*) FROM payday.ledger_marks") == [(0,)]
        assert query(empty_dsn, "SELECT count(*) FROM payday.check_recent()") == [(0,)]  # no mark: everything
        conn.execute("SELECT payday.transfer('bob', 'alice', 1.00)")
        payday(conn)
        assert query(empty_dsn, "SELECT payday_id, nbalances FROM payday.ledger_marks") == [(2, 2)]
        conn.execute("UPDATE payday.participants SET username = 'robert' WHERE username = 'bob'")
        assert query(empty_dsn, "SELECT username FROM payday.ledger_mark ORDER BY 1") == [("alice",), ("robert",)]
        assert query(empty_dsn, "SELECT count(*) FROM payday.check_recent()") == [(0,)]
        migrate.downgrade(empty_dsn, "0009")
        assert tables() == set() and rename_trigger() == []
        conn.execute("UPDATE payday.participants SET username = 'bob' WHERE username = 'robert'")
        payday(conn)  # head's finish() at 0009: the whole history checked, no mark
        assert query(empty_dsn, "SELECT count(*) FROM payday.check_recent()") == [(0,)]
        assert query(empty_dsn, "SELECT count(*) FROM payday.check()") == [(0,)]
    migrate.upgrade(empty_dsn)
    assert migrate.current(empty_dsn) == migrate.head() and tables() == {"ledger_marks", "ledger_mark"}


def test_0012_fills_current_tips_from_the_history_and_downgrades(empty_dsn: str) -> None:
    """0012: the upgrade fills payday.current_tips from the tips already written, the views
    read it and a payday pays from it; downgraded, the table and its triggers are gone and
    the views read the history again, as at 0011."""
    def pay(conn: psycopg.Connection) -> list[tuple]:
        conn.execute("SELECT payday.start()")
        conn.execute("SELECT payday.record_outcomes(coalesce(array_agg(id), '{}'), coalesce(array_agg(true), '{}')) "
                     "FROM payday.charge_intents('manual')")
        conn.execute("SELECT * FROM payday.pay_tips()")
        conn.execute("SELECT payday.clear_pending()")
        conn.execute("SELECT * FROM payday.finish()")
        return conn.execute("SELECT payday_id, tipper, tippee, amount FROM payday.transfers ORDER BY id").fetchall()

    def current_tips() -> list[tuple]:
        return query(empty_dsn, "SELECT relname FROM pg_class WHERE relname = 'current_tips'")

    def views_reading(table: str) -> set[str]:
        return {r[0] for r in query(empty_dsn, f"""
            SELECT DISTINCT v.relname FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
              JOIN pg_class v ON v.oid = r.ev_class
             WHERE d.refobjid = 'payday.{table}'::regclass AND v.oid <> d.refobjid""")}

    migrate.upgrade(empty_dsn, "0011")
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        alice_tips_bob(conn)
        conn.execute("INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) "
                     "VALUES ('2013-04-02', '2013-04-03', 'alice', 'bob', 2.00)")
        migrate.upgrade(empty_dsn, "0012")
        assert query(empty_dsn, "SELECT tipper, tippee, amount FROM payday.current_tips") == [("alice", "bob", 2)]
        assert views_reading("current_tips") == {"payday_tips", "due_credits"}
        assert views_reading("tips") == {"payday_tips"}  # the pairs changed since ts_start
        assert pay(conn) == [(1, "alice", "bob", 2)]
        migrate.downgrade(empty_dsn, "0011")
        assert current_tips() == [] and views_reading("tips") == {"payday_tips", "due_credits"}
        assert query(empty_dsn, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tips_current_%'") == [(0,)]
        conn.execute("INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) "
                     "VALUES ('2013-04-02', '2013-04-04', 'alice', 'bob', 3.00)")
        assert pay(conn)[-1] == (2, "alice", "bob", 3)  # head's functions on 0011's views
        assert query(empty_dsn, "SELECT count(*) FROM payday.check()") == [(0,)]
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            conn.execute("SELECT payday.rebuild_current_tips()")
    migrate.upgrade(empty_dsn)
    assert query(empty_dsn, "SELECT tipper, tippee, amount FROM payday.current_tips") == [("alice", "bob", 3)]
    assert query(empty_dsn, "SELECT count(*) FROM payday.check()") == [(0,)]


def test_0013_due_credits_reads_the_candidates_and_downgrades(empty_dsn: str) -> None:
    """0013: payday.due_credits sums the current tips of its candidates only (a lateral read
    by tipper); the same payouts are due before the upgrade, after it and after the
    downgrade, which puts 0012's whole-table sum back; a payday then pays them out."""
    def definition() -> str:
        return query(empty_dsn, "SELECT pg_get_viewdef('payday.due_credits'::regclass)")[0][0]

    def due() -> list[tuple]:
        return query(empty_dsn, "SELECT username, balance, obligations, payout, credit_amount, fee, route "
                                "FROM payday.credits_due()")

    migrate.upgrade(empty_dsn, "0012")
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        # alice: 50.00, tips bob 2.00: 48.00 after the tips, 2.00 still owed, 46.00 due; carol: 15.00, tips bob 6.00, 9.00 left is
        # below the minimum credit; dave: 30.00, his 25.00 to eve (suspicious) do not count;
        # erin: 9.99, nothing to sum (below the minimum whatever she owes); bob gets 8.00.
        conn.execute("INSERT INTO payday.participants (username, claimed_time, is_suspicious, balance, "
                     "balanced_account_uri) VALUES ('alice', '2013-04-01', false, 50.00, '/acct/a'), "
                     "('bob', '2013-04-01', false, 0, '/acct/b'), ('carol', '2013-04-01', false, 15.00, '/acct/c'), "
                     "('dave', '2013-04-01', false, 30.00, '/acct/d'), ('eve', '2013-04-01', true, 0, NULL), "
                     "('erin', '2013-04-01', false, 9.99, '/acct/e')")
        conn.execute("INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) VALUES "
                     "('2013-04-02', '2013-04-02', 'alice', 'bob', 2.00), "
                     "('2013-04-02', '2013-04-02', 'carol', 'bob', 6.00), "
                     "('2013-04-02', '2013-04-02', 'dave', 'eve', 25.00)")
        conn.execute("SELECT payday.start()")
        conn.execute("SELECT count(*) FROM payday.charge_intents('manual')")
        conn.execute("SELECT * FROM payday.pay_tips()")
        conn.execute("SELECT payday.clear_pending()")
        assert "LATERAL" not in definition()
        before = due()
        assert [(r[0], r[3]) for r in before] == [("alice", 46), ("dave", 30)]
        migrate.upgrade(empty_dsn, "0013")
        assert "LATERAL" in definition() and due() == before
        migrate.downgrade(empty_dsn, "0012")
        assert "LATERAL" not in definition() and due() == before
        migrate.upgrade(empty_dsn)
        assert due() == before
        paid = conn.execute("SELECT participant, amount FROM payday.credit_intents(ARRAY['alice', 'dave'], 'manual') "
                            "ORDER BY participant").fetchall()
        assert paid == [("alice", Decimal("-45.70")), ("dave", Decimal("-29.70"))]
        assert due() == []
    assert query(empty_dsn, "SELECT count(*) FROM payday.check()") == [(0,)]


def test_0015_makes_the_tip_transfers_other_indexes_each_partitions_own_and_downgrades(empty_dsn: str) -> None:
    """0015: the tipper, tippee and payday_id indexes of payday.transfers become each
    partition's own, built again under their names; pay_tips() then attaches a payday's
    partition with its primary key only. Downgraded in the middle of that payday, its
    partition gets the three it lacks and every partition's are the partitioned table's
    again; head's functions close the payday at 0014 and the next one as before."""
    def pay(conn: psycopg.Connection, until: str = "done") -> None:
        if until == "done":
            conn.execute("SELECT payday.clear_pending()")
            conn.execute("SELECT * FROM payday.finish()")
            return
        conn.execute("SELECT payday.start()")
        conn.execute("SELECT payday.record_outcomes(coalesce(array_agg(id), '{}'), coalesce(array_agg(true), '{}')) "
                     "FROM payday.charge_intents('manual')")
        conn.execute("SELECT * FROM payday.pay_tips()")

    def indexes() -> list[tuple]:
        """(index, the partitioned index it belongs to or None) of every partition."""
        return query(empty_dsn, """
            SELECT c.relname, p.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
              LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent
             WHERE x.indrelid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'payday.transfers'::regclass)
             ORDER BY 1""")

    def expected(parts: list[str], own: bool) -> list[tuple]:
        return sorted((f"{t}_{k}", ("transfers_" + k) if k == "pkey" or not own else None)
                      for t in parts for k in ("payday_idx", "pkey", "tippee_idx", "tipper_idx"))

    migrate.upgrade(empty_dsn, "0014")
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        alice_tips_bob(conn)
        pay(conn, "tips")
        pay(conn)
        conn.execute("SELECT payday.transfer('bob', 'alice', 1.00)")
        parts = ["transfers_ledger", "transfers_payday_1"]
        assert [(i, p) for i, p in indexes()] == [(i, p) for i, p in expected(parts, own=False)]
        ledger = query(empty_dsn, "SELECT id, tipper, tippee, amount FROM payday.transfers ORDER BY id")
        migrate.upgrade(empty_dsn, "0015")
        assert indexes() == expected(parts, own=True)
        assert query(empty_dsn, "SELECT count(*) FROM pg_indexes WHERE tablename = 'transfers'") == [(1,)]  # the key
        pay(conn, "tips")  # payday 2's tips: its partition has its primary key only
        assert [i for i, _ in indexes() if i.startswith("transfers_payday_2")] == ["transfers_payday_2_pkey"]
        migrate.downgrade(empty_dsn, "0014")
        assert indexes() == expected(parts + ["transfers_payday_2"], own=False)
        assert query(empty_dsn, "SELECT count(*) FROM payday.check()") == [(0,)]
        pay(conn)  # head's finish() at 0014: nothing left to build
        pay(conn, "tips")  # head's pay_tips() at 0014 builds all four before the attach
        pay(conn)
        assert indexes() == expected(parts + ["transfers_payday_2", "transfers_payday_3"], own=False)
        migrate.upgrade(empty_dsn)
        assert indexes() == expected(parts + ["transfers_payday_2", "transfers_payday_3"], own=True)
        assert query(empty_dsn, "SELECT id, tipper, tippee, amount FROM payday.transfers WHERE id <= %d ORDER BY id"
                     % max(r[0] for r in ledger)) == ledger
    assert query(empty_dsn, "SELECT count(*) FROM payday.check()") == [(0,)]


def test_0016_checks_the_references_of_exchanges_by_statement_and_downgrades(empty_dsn: str) -> None:
    """0016: the foreign keys of payday.exchanges give way to triggers that refuse, cascade
    and lock as they did; downgraded, the foreign keys are back, validated against the rows
    written meanwhile, and the triggers are gone."""
    def fkeys() -> list[tuple]:
        return query(empty_dsn, "SELECT conname FROM pg_constraint WHERE conrelid = 'payday.exchanges'::regclass "
                                "AND contype = 'f' ORDER BY 1")

    def triggers() -> list[tuple]:
        return query(empty_dsn, "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND (tgname LIKE '%exchanges_ref%' "
                                "OR tgname IN ('participants_rename_exchanges', 'participants_no_truncate')) ORDER BY 1")

    keys = [("exchanges_participant_fkey",), ("exchanges_payday_id_fkey",)]
    migrate.upgrade(empty_dsn, "0015")
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        alice_tips_bob(conn)
        assert fkeys() == keys and triggers() == []
        migrate.upgrade(empty_dsn, "0016")
        assert fkeys() == [] and triggers() == [
            ("exchanges_references_insert",), ("exchanges_references_update",), ("participants_exchanges_referenced",),
            ("participants_no_truncate",), ("participants_rename_exchanges",), ("paydays_exchanges_referenced",)]
        conn.execute("SELECT payday.start()")
        conn.execute("SELECT payday.record_outcomes(coalesce(array_agg(id), '{}'), coalesce(array_agg(true), '{}')) "
                     "FROM payday.charge_intents('manual')")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("INSERT INTO payday.exchanges (participant, amount, fee, processor, route, payday_id) "
                         "VALUES ('nobody', 1, 0, 'manual', 'x', 1)")
        conn.execute("UPDATE payday.participants SET username = 'alicia' WHERE username = 'alice'")
        assert query(empty_dsn, "SELECT participant FROM payday.exchanges") == [("alicia",)]
        migrate.downgrade(empty_dsn, "0015")
        assert fkeys() == keys and triggers() == []
        conn.execute("UPDATE payday.participants SET username = 'alice' WHERE username = 'alicia'")
        assert query(empty_dsn, "SELECT participant FROM payday.exchanges") == [("alice",)]  # the key's cascade
        conn.execute("SELECT * FROM payday.pay_tips()")
        conn.execute("SELECT payday.clear_pending()")
        conn.execute("SELECT * FROM payday.finish()")
    migrate.upgrade(empty_dsn)
    assert fkeys() == []
    assert query(empty_dsn, "SELECT count(*) FROM payday.check()") == [(0,)]


def test_template_copy_is_migrated(dsn: str) -> None:
    assert migrate.current(dsn) == migrate.head()
    assert query(dsn, "SELECT count(*) FROM payday.participants") == [(0,)]


def alembic(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if not (REPO / "alembic.ini").exists():
        pytest.skip("not a source checkout (no alembic.ini)")
    return subprocess.run([sys.executable, "-m", "alembic", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_alembic_cli_from_repo_root(empty_dsn: str) -> None:
    res = alembic("-x", f"dsn={empty_dsn}", "upgrade", "head")
    assert res.returncode == 0, res.stderr
    assert "payday" in schemas(empty_dsn)
    params = conninfo_to_dict(empty_dsn)
    url = f"postgresql://{params['user']}@{params['host']}:{params['port']}/{params['dbname']}"
    res = alembic("current", env={"DATABASE_URL": url})
    assert res.returncode == 0, res.stderr
    assert f"{migrate.head()} (head)" in res.stdout
    res = alembic("downgrade", "base", env={"DATABASE_URL": url.replace("postgresql://", "postgresql+psycopg://")})
    assert res.returncode == 0, res.stderr
    assert schemas(empty_dsn) == set()


def test_installed_package_carries_sql_and_migrations() -> None:
    assert (resources.files("payday.sql") / "schema" / "0001_initial.sql").is_file()
    assert (resources.files("payday.migrations") / "env.py").is_file()
    assert (resources.files("payday.migrations") / "versions" / "0001_initial.py").is_file()
    assert shipped_function_names(), "no sql/functions/**/*.sql in the installed package"


@pytest.mark.packaging
def test_wheel_carries_every_source_file(tmp_path: Path) -> None:
    if not (REPO / "pyproject.toml").exists():
        pytest.skip("not a source checkout")
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis"))
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                          "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    (wheel,) = (tmp_path / "dist").glob("payday-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"payday/sql/schema/0001_initial.sql", "payday/migrations/versions/0001_initial.py",
            "payday/migrations/env.py", "payday/cli.py"} <= names
    mapping = {"runner": "payday", "sql": "payday/sql", "migrations": "payday/migrations"}
    expected = {
        f"{prefix}/{p.relative_to(REPO / top).as_posix()}"
        for top, prefix in mapping.items()
        for p in (REPO / top).rglob("*")
        if p.suffix in {".py", ".sql"} and "__pycache__" not in p.parts
    }
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "payday = payday.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_concurrent_upgrades_serialise(empty_dsn: str) -> None:
    # Separate processes: alembic's context proxy is process-global, not thread-safe.
    code = "import sys; from payday import migrate; migrate.upgrade(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, empty_dsn], stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert migrate.current(empty_dsn) == migrate.head()
    assert query(empty_dsn, "SELECT count(*) FROM alembic_version") == [(1,)]

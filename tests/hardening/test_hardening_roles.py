"""Roles and privileges (migration 0002, docs/roles.md): each role can do its job and nothing more."""

from __future__ import annotations

import logging
from decimal import Decimal as D

import psycopg
import pytest

from payday.demo import seed
from payday.run import run_payday

from .conftest import INSERT_PARTICIPANT, INSERT_TIP, as_role, participant, sqlstate_of, tip

ROLES = ("payday_app", "payday_runner", "payday_readonly")

# What the runner calls (runner/run.py), plus the read-only API.
RUNNER_FUNCTIONS = {
    "start()", "pay_tips()", "clear_pending()", "finish()", "charge_intent(text,text)", "charge_intents(text)",
    "credit_intent(text,text)", "credit_intents(text[],text)", "charge_outcome(bigint,boolean,text,text)",
    "credit_outcome(bigint,boolean,text,text)", "record_outcomes(bigint[],boolean[],text[],text[])",
    "index_tip_transfers(bigint)",
}
READ_FUNCTIONS = {
    "open_payday()", "check()", "check_recent()", "charges_due()", "credits_due()", "pending_exchanges()", "upcharge(numeric)",
    "skim_credit(numeric)",
}
INLINE_HELPERS = {"open_sentinel()", "fees()", "charge_for(numeric)"}


def signatures(db: psycopg.Connection, role: str) -> set[str]:
    """Functions of schema payday the role may execute, as name(argtypes)."""
    rows = db.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p "
        "WHERE p.pronamespace = 'payday'::regnamespace AND has_function_privilege(%s, p.oid, 'EXECUTE')",
        (role,),
    ).fetchall()
    return {sig(r[0]) for r in rows}


def sig(regprocedure: str) -> str:
    """payday."check"() -> check(); payday.charge_intent(text, text) -> charge_intent(text,text)."""
    return regprocedure.removeprefix("payday.").replace(", ", ",").replace('"', "")


def test_roles_exist_and_cannot_log_in(db: psycopg.Connection) -> None:
    rows = db.execute(
        "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles "
        "WHERE rolname = ANY(%s) ORDER BY 1", (list(ROLES),)
    ).fetchall()
    assert rows == [(r, False, False, False, False, False) for r in sorted(ROLES)]


def test_public_executes_nothing(db: psycopg.Connection) -> None:
    # Not even through a role that has nothing: PUBLIC's EXECUTE is revoked on every function.
    leaked = db.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a "
        "WHERE p.pronamespace = 'payday'::regnamespace AND a.grantee = 0 AND a.privilege_type = 'EXECUTE'"
    ).fetchall()
    assert leaked == []
    # ... and functions created later by the migrating role start private too.
    db.execute("CREATE FUNCTION payday.t_new() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    assert db.execute("SELECT has_function_privilege('payday_readonly', 'payday.t_new()', 'EXECUTE')").fetchone() == (False,)
    db.execute("DROP FUNCTION payday.t_new()")


def test_each_role_executes_exactly_its_functions(db: psycopg.Connection) -> None:
    assert signatures(db, "payday_runner") == RUNNER_FUNCTIONS | READ_FUNCTIONS | INLINE_HELPERS
    assert signatures(db, "payday_readonly") == READ_FUNCTIONS | INLINE_HELPERS
    assert signatures(db, "payday_app") == READ_FUNCTIONS | INLINE_HELPERS


def test_granted_functions_are_security_definer_with_a_pinned_search_path(db: psycopg.Connection) -> None:
    rows = db.execute(
        "SELECT p.oid::regprocedure::text, p.prosecdef, p.proconfig, l.lanname FROM pg_proc p "
        "JOIN pg_language l ON l.oid = p.prolang WHERE p.pronamespace = 'payday'::regnamespace"
    ).fetchall()
    info = {sig(s): (secdef, cfg, lang) for s, secdef, cfg, lang in rows}
    for name in RUNNER_FUNCTIONS | READ_FUNCTIONS | {"transfer(text,text,numeric)", "reverse_transfer(bigint,text)"}:
        secdef, cfg, _ = info[name]
        assert secdef, f"{name} is not SECURITY DEFINER"
        assert "search_path=pg_catalog, payday, pg_temp" in (cfg or []), (name, cfg)  # other settings may follow
    for name in INLINE_HELPERS:  # the planner inlines them only as plain SQL functions
        assert info[name] == (False, None, "sql"), name


def test_a_role_with_nothing_reaches_nothing(db: psycopg.Connection, login_role) -> None:
    with psycopg.connect(login_role(), autocommit=True) as nobody:
        for q in ("SELECT * FROM payday.participants", "SELECT payday.open_sentinel()", "SELECT * FROM payday.check()",
                  "SELECT * FROM payday.start()", "SELECT * FROM payday_sandbox.operations"):
            assert sqlstate_of(nobody, q) == "42501", q


# -- payday_app: the web application --------------------------------------------------------


def test_app_writes_the_two_spec_inserts_and_profile_columns(db: psycopg.Connection) -> None:
    with as_role(db, "payday_app"):
        db.execute(INSERT_PARTICIPANT, ("alice", None, None, D("0"), None, None))
        db.execute(INSERT_PARTICIPANT, ("bob", "2013-04-01T00:00:00Z", False, 0, "/v1/bank/1", "cus_1"))
        db.execute(INSERT_TIP, ("2013-04-02T00:00:00Z", "2013-04-02T00:00:00Z", "bob", "alice", D("1.00")))
        db.execute(INSERT_TIP, ("2013-04-02T00:00:00Z", "2013-04-03T00:00:00Z", "bob", "alice", D("2.00")))
        db.execute("UPDATE payday.participants SET claimed_time = now(), is_suspicious = false, "
                   "balanced_account_uri = '/v1/bank/2', stripe_customer_id = 'cus_2' WHERE username = 'alice'")
        db.execute("UPDATE payday.participants SET username = 'robert' WHERE username = 'bob'")
        assert db.execute("SELECT count(*) FROM payday.tips WHERE tipper = 'robert'").fetchone() == (2,)
        assert db.execute("SELECT * FROM payday.upcharge(9.32)").fetchone() == (D("10.00"), D("0.68"))


@pytest.mark.parametrize("query", [
    "UPDATE payday.participants SET balance = 100 WHERE username = 'bob'",
    "UPDATE payday.participants SET pending = 1 WHERE username = 'bob'",
    "UPDATE payday.participants SET opening_balance = 100 WHERE username = 'bob'",
    "UPDATE payday.participants SET last_bill_result = '' WHERE username = 'bob'",
    "UPDATE payday.participants SET last_ach_result = '' WHERE username = 'bob'",
    "DELETE FROM payday.participants WHERE username = 'bob'",
    "INSERT INTO payday.participants (username, pending) VALUES ('x', 1)",
    "INSERT INTO payday.participants (username, opening_balance) VALUES ('x', 1)",
    "UPDATE payday.tips SET amount = 100",
    "DELETE FROM payday.tips",
    "INSERT INTO payday.transfers (tipper, tippee, amount) VALUES ('bob', 'alice', 1)",
    "INSERT INTO payday.exchanges (participant, amount, fee, processor, payday_id) VALUES ('bob', 1, 0, 'manual', 1)",
    "INSERT INTO payday.paydays DEFAULT VALUES",
    "UPDATE payday.paydays SET ncharges = 1",
    "INSERT INTO payday.reversals VALUES (1, 2, 'x')",
    "SELECT payday.transfer('bob', 'alice', 1)",
    "SELECT payday.reverse_transfer(1, 'x')",
    "SELECT * FROM payday.start()",
    "SELECT * FROM payday.pay_tips()",
    "SELECT payday.record_outcomes('{1}', '{t}')",
    "SELECT payday.require_participant('bob')",
    "TRUNCATE payday.tips",
])
def test_app_may_not_touch_money(db: psycopg.Connection, query: str) -> None:
    participant(db, "alice")
    participant(db, "bob", balance=D("5.00"))
    tip(db, "bob", "alice", "1.00")
    with as_role(db, "payday_app"):
        assert sqlstate_of(db, query) == "42501", query


def test_app_cannot_create_money_but_a_dba_can_open_a_balance(db: psycopg.Connection) -> None:
    """A participant inserted by the web application starts at 0. Only the table owner (a DBA
    migrating accounts) may give one an opening balance: the app cannot mint money."""
    with as_role(db, "payday_app"):
        assert sqlstate_of(db, INSERT_PARTICIPANT, ("mint", None, None, D("0.01"), None, None)) == "42501"
        db.execute(INSERT_PARTICIPANT, ("zero", None, None, D("0.00"), None, None))
    participant(db, "migrated", balance=D("12.34"))  # as the owner
    assert db.execute("SELECT balance, opening_balance FROM payday.participants WHERE username = 'migrated'"
                      ).fetchone() == (D("12.34"), D("12.34"))


# -- payday_readonly: reports -----------------------------------------------------------------


def test_readonly_reads_everything_and_writes_nothing(db: psycopg.Connection) -> None:
    participant(db, "alice")
    relations = [r[0] for r in db.execute(
        "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = 'payday'::regnamespace "
        "AND c.relkind IN ('r', 'v', 'm')").fetchall()]
    assert len(relations) >= 10
    with as_role(db, "payday_readonly"):
        for rel in relations:
            db.execute(f"SELECT count(*) FROM {rel}")
        assert db.execute("SELECT count(*) FROM payday.check()").fetchone() == (0,)
        db.execute("SELECT payday.open_payday()")
        for q in ("INSERT INTO payday.participants (username) VALUES ('x')",
                  "UPDATE payday.participants SET claimed_time = now()",
                  "INSERT INTO payday.tips (tipper, tippee, amount) VALUES ('alice', 'alice', 1)",
                  "SELECT * FROM payday.start()", "SELECT payday.transfer('a', 'b', 1)",
                  "SELECT * FROM payday.charge_intents()"):
            assert sqlstate_of(db, q) == "42501", q


# -- payday_runner ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "INSERT INTO payday.participants (username) VALUES ('x')",
    "UPDATE payday.participants SET balance = 100",
    "UPDATE payday.participants SET claimed_time = now()",
    "INSERT INTO payday.tips (tipper, tippee, amount) VALUES ('bob', 'alice', 1)",
    "INSERT INTO payday.transfers (tipper, tippee, amount) VALUES ('bob', 'alice', 1)",
    "UPDATE payday.exchanges SET status = 'succeeded'",
    "UPDATE payday.paydays SET ncharges = 1",
    "DELETE FROM payday.transfers",
    "SELECT payday.transfer('bob', 'alice', 1)",
    "SELECT payday.reverse_transfer(1, 'x')",
    "SELECT payday.require_open_payday(true, 'payin')",
    "DROP TABLE payday_sandbox.operations",
    "CREATE TABLE payday.t (x int)",
])
def test_runner_writes_only_through_functions(db: psycopg.Connection, query: str) -> None:
    participant(db, "alice")
    participant(db, "bob", balance=D("5.00"))
    with as_role(db, "payday_runner"):
        assert sqlstate_of(db, query) == "42501", query


def test_a_login_role_with_only_payday_runner_runs_a_whole_payday(db: psycopg.Connection, login_role) -> None:
    """The runner, its sandbox processor and the final check, connected as a role that has
    payday_runner and nothing else."""
    seed(db)
    runner_dsn = login_role("payday_runner")
    with psycopg.connect(runner_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT current_user <> 'postgres', pg_has_role('payday_app', 'MEMBER')").fetchone() == (True, False)
    result = run_payday(runner_dsn, processor_override="sandbox", log=logging.getLogger("payday.tests"))
    assert result.status == "finished", result.message
    assert db.execute("SELECT phase, ncharges > 0, nachs > 0 FROM payday.paydays").fetchone() == ("done", True, True)
    assert db.execute("SELECT count(*) FROM payday.exchanges WHERE status = 'pre'").fetchone() == (0,)
    assert db.execute("SELECT count(*) > 0 FROM payday_sandbox.operations").fetchone() == (True,)


def test_reports_work_for_the_roles_documented_for_them(db: psycopg.Connection, login_role,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """docs/roles.md: plan, status and report as payday_runner; status and report as payday_readonly."""
    from payday.cli import main

    seed(db)
    runner_dsn, readonly_dsn = login_role("payday_runner"), login_role("payday_readonly")
    for command in ("plan", "status", "report"):
        assert main(["--dsn", runner_dsn, command]) == 0, capsys.readouterr().err
    for command in ("status", "report"):
        assert main(["--dsn", readonly_dsn, command]) == 0, capsys.readouterr().err
    assert main(["--dsn", readonly_dsn, "run", "--processor", "sandbox"]) != 0  # reports only
    assert "permission denied" in capsys.readouterr().err
    assert db.execute("SELECT count(*) FROM payday.paydays").fetchone() == (0,)

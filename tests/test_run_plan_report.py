"""`payday plan` (changes nothing), `payday status` and `payday report`."""
from __future__ import annotations

import io
import json
from decimal import Decimal as D

import psycopg
import pytest

from payday.plan import plan
from payday.report import report, status
from payday.run import LOCK_KEY, LockHeld, RunError
from test_run_sandbox import EXPECTED_COUNTERS, run, seeded

TABLES = ("participants", "tips", "transfers", "exchanges", "paydays")


def fingerprint(db: psycopg.Connection) -> dict[str, str]:
    return {
        t: db.execute(f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM payday.{t} x").fetchone()[0]  # type: ignore[index]
        for t in TABLES
    }


def test_plan_changes_nothing_and_assumes_every_charge_succeeds(dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    before = fingerprint(db)
    out = io.StringIO()
    s = plan(dsn, out)
    assert fingerprint(db) == before
    assert db.execute("SELECT count(*) FROM payday.paydays").fetchone() == (0,)
    text = out.getvalue()
    assert "nothing was changed" in text and "a new payday" in text
    # alice 10.00, grace 10.00 (would be declined for real; the plan assumes success), mallory 26.81
    assert s["charges"] == {"n": 3, "amount": D("44.14"), "charge_amount": D("46.81"), "fee": D("2.67")}
    # grace's 4.00 to bob now goes through: one more transfer than the real run
    assert s["transfers"] == {"n": 8, "tippers": 6, "volume": D("44.50")}
    # every bank account is assumed a merchant: bob, carol, heidi, oscar
    assert s["payouts"] == {"n": 4, "payout": D("139.50"), "credit_amount": D("138.30"), "fee": D("1.20")}
    assert s["counters"]["ncc_missing"] == 1


def test_plan_json_details(dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    out = io.StringIO()
    plan(dsn, out, as_json=True)
    doc = json.loads(out.getvalue())
    assert doc["payday_state"] == "new" and doc["phase"] == "payin"
    assert [c["username"] for c in doc["charges"]] == ["alice", "grace", "mallory"]
    assert {c["processor"] for c in doc["charges"]} == {"stripe", "balanced"}
    assert doc["charges"][0]["charge_amount"] == "10.00"  # Decimal as a string
    assert len(doc["transfers"]) == 8
    assert {p["username"] for p in doc["payouts"]} == {"bob", "carol", "heidi", "oscar"}
    assert doc["summary"]["payouts"]["credit_amount"] == "138.30"
    assert db.execute("SELECT count(*) FROM payday.exchanges").fetchone() == (0,)


def test_plan_of_an_open_payday_in_phase_clear(dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    db.execute("SELECT payday.start()")
    db.execute("SELECT count(*) FROM payday.charge_intents('manual')")
    db.execute(
        "SELECT payday.record_outcomes(array_agg(id), array_agg(true), array_agg(NULL::text), array_agg(NULL::text)) "
        "FROM payday.pending_exchanges()"
    )
    db.execute("SELECT * FROM payday.pay_tips()")
    before = fingerprint(db)
    out = io.StringIO()
    s = plan(dsn, out)
    assert fingerprint(db) == before
    assert s["payday_state"] == "open" and s["phase"] == "clear"
    assert "past its payin phase" in out.getvalue()
    assert s["payouts"]["n"] == 4


def test_plan_refuses_while_a_runner_holds_the_lock(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        with pytest.raises(LockHeld):
            plan(dsn, io.StringIO())


def test_status_and_report(dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    out = io.StringIO()
    status(dsn, out)
    assert "no open payday" in out.getvalue() and "no payday has run yet" in out.getvalue()
    out = io.StringIO()
    report(dsn, out)
    assert out.getvalue() == "no payday yet\n"

    db.execute("SELECT payday.start()")
    db.execute("SELECT count(*) FROM payday.charge_intents('sandbox')")
    out = io.StringIO()
    status(dsn, out)
    text = out.getvalue()
    assert "open payday 1" in text and "phase payin" in text
    assert "pending intents (pre exchanges): 3" in text and "3 charge (sandbox)" in text
    out = io.StringIO()
    status(dsn, out, as_json=True)
    doc = json.loads(out.getvalue())
    assert doc["open"]["phase"] == "payin" and doc["pending_intents"] == [{"kind": "charge", "processor": "sandbox", "n": 3}]

    run(dsn)
    out = io.StringIO()
    status(dsn, out)
    assert "no open payday" in out.getvalue() and "last finished payday 1" in out.getvalue()

    out = io.StringIO()
    report(dsn, out)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:3] == ["payday", "started", "phase"]
    assert lines[2].split()[0] == "1" and "done" in lines[2] and "40.50" in lines[2] and "-65.90" in lines[2]

    out = io.StringIO()
    report(dsn, out, as_json=True)
    (row,) = json.loads(out.getvalue())
    assert row["transfer_volume"] == "40.50" and row["ach_volume"] == "-65.90" and row["phase"] == "done"
    assert {k: row[k] for k in EXPECTED_COUNTERS} == {
        k: (str(v) if isinstance(v, D) else v) for k, v in EXPECTED_COUNTERS.items()
    }

    out = io.StringIO()
    report(dsn, out, payday_id=1)
    assert "charge_volume       36.81" in out.getvalue()
    with pytest.raises(RunError, match="no payday 7"):
        report(dsn, io.StringIO(), payday_id=7)

"""Property: a payday driven through the SQL functions equals a small pure-Python model of
SPEC §4, on random small worlds.

The model below is written from SPEC §4 for this test (Decimal only, one participant at a
time, as the reference did); the SQL does the same set-based. Worlds: 2-8 participants,
claimed before the payday, stubs, and late claimers (a claim time in the future when
inserted, or a claim made after payday.start()); suspicious TRUE/NULL/FALSE; balances;
funding sources (balanced uri, stripe customer, both, none; a route containing ``fail``
fails at the sandbox, a balanced uri containing ``nomerchant`` is no merchant); tip
histories of several rows per pair, with zero tips and rows changed after ts_start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from .world import (BASE, CHARGE_ERROR, COUNTERS, CREDIT_ERROR, Driver, World, counters, exchanges, reset, rows,
                    transfers, upcharge, violations)

ZERO = Decimal("0.00")
MINIMUM_CHARGE = Decimal("9.32")
MINIMUM_CREDIT = Decimal("10.00")
CREDIT_FEE = Decimal("0.30")

# How a participant stands with respect to this payday's ts_start.
BEFORE, STUB, LATE_INSERTED, LATE_CLAIMED = "before", "stub", "late-inserted", "late-claimed"


@dataclass
class Person:
    name: str
    claim: str
    suspicious: bool | None
    balance: Decimal
    balanced: str | None
    stripe: str | None


@dataclass
class TipRow:
    tipper: str
    tippee: str
    amount: Decimal
    ctime: int        # minutes after the pair's base time (same for every row of a pair)
    seq: int          # order within the pair's history (mtime increases with it)
    after_start: bool


@dataclass
class Expected:
    balances: dict[str, Decimal]
    transfers: list[tuple[str, str, Decimal]]
    exchanges: list[tuple[str, Decimal, Decimal, str]]
    counters: dict[str, object]
    features: set[str]
    last_bill: dict[str, str | None]
    last_ach: dict[str, str | None]


@dataclass
class Counters:
    values: dict[str, object] = field(default_factory=lambda: {k: 0 for k in COUNTERS})

    def add(self, name: str, amount: object) -> None:
        self.values[name] = self.values[name] + amount  # type: ignore[operator]


# ---------------------------------------------------------------------------------------------
# The model (SPEC §4).
# ---------------------------------------------------------------------------------------------

def model(people: list[Person], tips: list[TipRow]) -> Expected:
    by_name = {p.name: p for p in people}
    claimed_before = {p.name for p in people if p.claim == BEFORE}
    balance = {p.name: p.balance for p in people}
    pending: dict[str, Decimal | None] = {p.name: (ZERO if p.name in claimed_before else None) for p in people}
    last_bill: dict[str, str | None] = {p.name: None for p in people}
    last_ach: dict[str, str | None] = {p.name: None for p in people}
    c = Counters()
    moved: list[tuple[str, str, Decimal]] = []
    exch: list[tuple[str, Decimal, Decimal, str]] = []
    seen: set[str] = set()

    def current_tips(tipper: str, before_start_only: bool) -> dict[str, TipRow]:
        """tippee -> the tipper's latest tip row (before ts_start only, if asked)."""
        latest: dict[str, TipRow] = {}
        for t in tips:
            if t.tipper != tipper or (before_start_only and t.after_start):
                continue
            if t.tippee not in latest or t.seq > latest[t.tippee].seq:
                latest[t.tippee] = t
        return latest

    # Step 3: payin participants, oldest claim first (people are listed in claim order).
    payin = [p for p in people if p.claim == BEFORE and p.suspicious is not True]

    for p in payin:
        # Step 4: this payday's tips, suspicious tippees excluded, oldest relationship first.
        due = sorted(((t.ctime, t.tippee, t.amount) for t in current_tips(p.name, True).values()
                      if by_name[t.tippee].suspicious is not True))
        owed = sum((amount for _, tippee, amount in due if tippee in claimed_before), ZERO)
        # Step 5: charge what is short.
        if owed > balance[p.name]:
            route = p.balanced if p.balanced is not None else p.stripe
            if route is None:
                c.add("ncc_missing", 1)
            elif p.suspicious is None:
                seen.add("unreviewed and short: not charged")
            elif p.suspicious is False:
                amount = max(owed - balance[p.name], MINIMUM_CHARGE)
                seen.add("minimum charge" if amount == MINIMUM_CHARGE else "charge above the minimum")
                charge, fee = upcharge(amount)
                if "fail" in route:
                    exch.append((p.name, amount, fee, "failed"))
                    last_bill[p.name] = CHARGE_ERROR
                    c.add("ncc_failing", 1)
                else:
                    exch.append((p.name, amount, fee, "succeeded"))
                    balance[p.name] += amount
                    last_bill[p.name] = ""
                    c.add("ncharges", 1)
                    c.add("charge_volume", charge)
                    c.add("charge_fees_volume", fee)
        # Step 6: tips, until the first one the balance cannot cover.
        paid = 0
        for i, (_, tippee, amount) in enumerate(due):
            if amount == 0 or tippee not in claimed_before:
                seen.add("tip skipped (zero)" if amount == 0 else "tip skipped (tippee not claimed)")
                continue
            if amount > balance[p.name]:
                seen.add("tips stopped at an uncovered one")
                if any(0 < a <= balance[p.name] and t in claimed_before for _, t, a in due[i + 1:]):
                    seen.add("stopped although a later tip would fit")
                break
            balance[p.name] -= amount
            pending[tippee] = pending[tippee] + amount  # type: ignore[operator]
            moved.append((p.name, tippee, amount))
            paid += 1
            c.add("ntransfers", 1)
            c.add("transfer_volume", amount)
        c.add("nparticipants", 1)
        c.add("ntippers", 1 if paid else 0)
        c.add("ntips", paid)

    # Step 7: clear.
    for name, received in pending.items():
        if received is not None:
            balance[name] += received

    # Step 8: payouts.
    for p in payin:
        obligations = sum((t.amount for t in current_tips(p.name, False).values()
                           if by_name[t.tippee].suspicious is not True), ZERO)
        payout = balance[p.name] - obligations
        if (payout <= 0 or payout < MINIMUM_CREDIT or p.suspicious is not False or p.balanced is None
                or "nomerchant" in p.balanced):
            if payout >= MINIMUM_CREDIT and p.balanced is not None and "nomerchant" in p.balanced:
                seen.add("payout skipped: not a merchant")
            continue
        if obligations:
            seen.add("payout net of obligations")
        credit = payout - CREDIT_FEE
        if "fail" in p.balanced:
            exch.append((p.name, -credit, CREDIT_FEE, "failed"))
            last_ach[p.name] = CREDIT_ERROR
            c.add("nach_failing", 1)
        else:
            exch.append((p.name, -credit, CREDIT_FEE, "succeeded"))
            balance[p.name] -= payout
            last_ach[p.name] = ""
            c.add("nachs", 1)
            c.add("ach_volume", -credit)
            c.add("ach_fees_volume", CREDIT_FEE)

    return Expected(balances=balance, transfers=sorted(moved), exchanges=sorted(exch), counters=c.values,
                    last_bill=last_bill, last_ach=last_ach, features=seen)


# ---------------------------------------------------------------------------------------------
# Random worlds.
# ---------------------------------------------------------------------------------------------

def _cents(low: int, high: int) -> st.SearchStrategy[Decimal]:
    return st.integers(min_value=low, max_value=high).map(lambda n: Decimal(n).scaleb(-2))


tip_amounts = st.one_of(st.just(ZERO), _cents(1, 500), _cents(1, 1500),
                        st.sampled_from([Decimal("0.01"), Decimal("1.00"), Decimal("5.00"), Decimal("10.00")]))
balances = st.one_of(st.just(ZERO), _cents(1, 800), _cents(0, 3000), _cents(0, 10000),
                     st.sampled_from([Decimal("5.00"), Decimal("10.00"), Decimal("10.30")]))


@st.composite
def people(draw: st.DrawFn) -> list[Person]:
    n = draw(st.integers(min_value=2, max_value=8))
    out = []
    for i in range(n):
        name = f"p{i}"
        claim = draw(st.sampled_from([BEFORE] * 6 + [STUB, LATE_INSERTED, LATE_CLAIMED]))
        suspicious = draw(st.sampled_from([False] * 6 + [None, True]))
        balanced = draw(st.sampled_from([None, None, "", "", "-fail", "-nomerchant", "-fail-nomerchant"]))
        stripe = draw(st.sampled_from([None, None, "", "_fail"]))
        out.append(Person(
            name=name, claim=claim, suspicious=suspicious, balance=draw(balances),
            balanced=None if balanced is None else f"/v1/accounts/{name}{balanced}",
            stripe=None if stripe is None else f"cus_{name}{stripe}"))
    return out


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[Person], list[TipRow]]:
    ps = draw(people())
    names = [p.name for p in ps]
    every_pair = [(a, b) for a in names for b in names if a != b]
    pairs = draw(st.lists(st.sampled_from(every_pair), unique=True, min_size=1, max_size=min(16, len(every_pair))))
    tips: list[TipRow] = []
    for tipper, tippee in pairs:
        ctime = draw(st.sampled_from([0, 0, 0, 10, 20]))  # ties are common: then the tippee decides
        before = draw(st.lists(tip_amounts, min_size=0, max_size=3))
        after = draw(st.lists(tip_amounts, min_size=0, max_size=2))
        if not before and not after:
            before = [draw(tip_amounts)]
        for seq, amount in enumerate(before):
            tips.append(TipRow(tipper, tippee, amount, ctime, seq, False))
        for seq, amount in enumerate(after, start=len(before)):
            tips.append(TipRow(tipper, tippee, amount, ctime, seq, True))
    return ps, tips


# ---------------------------------------------------------------------------------------------
# The SQL payday.
# ---------------------------------------------------------------------------------------------

def fast(db: psycopg.Connection) -> None:
    """A throwaway database needs no durable commits: every call is its own transaction here,
    and waiting for each WAL flush would double the run time."""
    db.execute("SET synchronous_commit = off")


def sql_payday(db: psycopg.Connection, ps: list[Person], tips: list[TipRow], batch: bool) -> None:
    w = World(db)
    future = datetime.now(timezone.utc) + timedelta(days=1)
    for i, p in enumerate(ps):
        claimed = {BEFORE: BASE + timedelta(minutes=i), STUB: None, LATE_INSERTED: future, LATE_CLAIMED: None}[p.claim]
        w.participant(p.name, claimed=claimed, suspicious=p.suspicious, balance=p.balance, balanced=p.balanced,
                      stripe=p.stripe)

    def when(t: TipRow, ts_start: datetime | None) -> tuple[datetime, datetime]:
        ctime = BASE + timedelta(days=1, minutes=t.ctime)
        if t.after_start:
            assert ts_start is not None
            return ctime, ts_start + timedelta(seconds=1 + t.seq)
        return ctime, ctime + timedelta(hours=1 + t.seq)

    for t in tips:
        if not t.after_start:
            ctime, mtime = when(t, None)
            w.tip(t.tipper, t.tippee, t.amount, ctime=ctime, mtime=mtime)

    d = Driver(db, batch=batch)
    pd = d.start()
    # After ts_start: late claims and tip changes; this payday must not see them.
    for i, p in enumerate(ps):
        if p.claim == LATE_CLAIMED:
            w.claim(p.name, pd["ts_start"] + timedelta(minutes=1 + i))
    for t in tips:
        if t.after_start:
            ctime, mtime = when(t, pd["ts_start"])
            w.tip(t.tipper, t.tippee, t.amount, ctime=ctime, mtime=mtime)
    d.charges()
    d.pay_tips()
    d.clear()
    d.credits()
    d.finish()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(world=worlds(), batch=st.booleans())
def test_sql_payday_matches_the_model(db: psycopg.Connection, world: tuple[list[Person], list[TipRow]],
                                      batch: bool) -> None:
    ps, tips = world
    fast(db)
    reset(db)
    note(f"people: {ps}")
    note(f"tips: {tips}")
    expected = model(ps, tips)
    for name, n in expected.counters.items():
        if name.startswith("n") and name != "nparticipants" and n:
            event(f"{name} > 0")
    for feature in sorted(expected.features):
        event(feature)
    if any(t.after_start for t in tips):
        event("tips changed after ts_start")
    sql_payday(db, ps, tips, batch)

    got = {r["username"]: r for r in rows(db, "SELECT * FROM payday.participants")}
    assert {n: r["balance"] for n, r in got.items()} == expected.balances
    assert all(r["pending"] is None for r in got.values())
    assert transfers(db) == expected.transfers
    assert exchanges(db) == expected.exchanges
    assert counters(db) == expected.counters
    assert {n: r["last_bill_result"] for n, r in got.items()} == expected.last_bill
    assert {n: r["last_ach_result"] for n, r in got.items()} == expected.last_ach
    assert violations(db) == []
    assert rows(db, "SELECT phase FROM payday.paydays") == [{"phase": "done"}]


@st.composite
def one_tipper_worlds(draw: st.DrawFn) -> tuple[list[Person], list[TipRow]]:
    """One tipper, no money coming in (no funding, a failing card, or unreviewed), several
    tippees with tied relationship times: the order of tips and where they stop decide all."""
    funding = draw(st.sampled_from([(None, None), (None, "cus_p0_fail"), ("/v1/accounts/p0-fail", None)]))
    tipper = Person("p0", BEFORE, draw(st.sampled_from([False, None])), draw(_cents(0, 2000)), *funding)
    k = draw(st.integers(min_value=1, max_value=6))
    tippees = [Person(f"p{i}", draw(st.sampled_from([BEFORE] * 4 + [STUB, LATE_CLAIMED])), False, ZERO, None, None)
               for i in range(1, k + 1)]
    tips = []
    for t in tippees:
        ctime = draw(st.sampled_from([0, 0, 10]))
        amounts = draw(st.lists(tip_amounts, min_size=1, max_size=2))
        for seq, amount in enumerate(amounts):
            tips.append(TipRow("p0", t.name, amount, ctime, seq, False))
        if draw(st.booleans()):
            tips.append(TipRow("p0", t.name, draw(tip_amounts), ctime, len(amounts), True))
    return [tipper, *tippees], tips


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(world=one_tipper_worlds())
def test_one_tipper_order_and_stop(db: psycopg.Connection, world: tuple[list[Person], list[TipRow]]) -> None:
    ps, tips = world
    fast(db)
    reset(db)
    note(f"people: {ps}")
    note(f"tips: {tips}")
    expected = model(ps, tips)
    for feature in sorted(expected.features):
        event(feature)
    sql_payday(db, ps, tips, batch=True)
    assert transfers(db) == expected.transfers
    assert counters(db) == expected.counters
    assert {r["username"]: r["balance"] for r in rows(db, "SELECT * FROM payday.participants")} == expected.balances


def test_model_sanity() -> None:
    """The model itself, on a hand-checked world (so a model bug cannot hide a SQL one)."""
    ps = [Person("a", BEFORE, False, Decimal("2.00"), None, "cus_a"),
          Person("b", BEFORE, False, Decimal("20.00"), "/v1/accounts/b", None),
          Person("c", STUB, None, ZERO, None, None)]
    tips = [TipRow("a", "b", Decimal("3.00"), 0, 0, False),
            TipRow("a", "c", Decimal("4.00"), 0, 0, False),
            TipRow("b", "c", Decimal("5.00"), 0, 0, False),
            TipRow("b", "a", Decimal("1.00"), 0, 0, True)]
    e = model(ps, tips)
    # a owes 3.00 (c is a stub): short 1.00, charged 9.32; pays b 3.00 -> 8.32.
    # b: 20.00 + 3.00; obligations 5.00 (to the stub) + 1.00 (changed after start): payout 17.00.
    assert e.balances == {"a": Decimal("8.32"), "b": Decimal("6.00"), "c": ZERO}
    assert e.transfers == [("a", "b", Decimal("3.00"))]
    assert e.exchanges == [("a", Decimal("9.32"), Decimal("0.68"), "succeeded"),
                           ("b", Decimal("-16.70"), CREDIT_FEE, "succeeded")]
    assert e.counters["charge_volume"] == Decimal("10.00") and e.counters["ach_volume"] == Decimal("-16.70")
    assert (e.counters["nparticipants"], e.counters["ntippers"], e.counters["ntips"]) == (2, 1, 1)


def test_consecutive_paydays(db: psycopg.Connection) -> None:
    """Two paydays in a row: the second starts from the first's balances."""
    w = World(db)
    w.participant("a", balance="25.00")
    w.participant("b", balanced="/v1/accounts/b")
    w.tip("a", "b", "6.00")
    first = Driver(db).run()
    assert rows(db, "SELECT username, balance FROM payday.participants ORDER BY 1") == [
        {"username": "a", "balance": Decimal("19.00")}, {"username": "b", "balance": Decimal("6.00")}]
    second = Driver(db).run()
    # b got 6.00 twice: 12.00 >= 10.00 is paid out in the second payday.
    assert rows(db, "SELECT username, balance FROM payday.participants ORDER BY 1") == [
        {"username": "a", "balance": Decimal("13.00")}, {"username": "b", "balance": Decimal("0.00")}]
    assert (counters(db, first["id"])["nachs"], counters(db, second["id"])["nachs"]) == (0, 1)
    assert counters(db, second["id"])["ach_volume"] == Decimal("-11.70")

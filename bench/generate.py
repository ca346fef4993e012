"""Deterministic generator of realistic tipping communities, loaded with COPY.

    python -m bench.generate --size 100k [--seed 2013] [--dsn ...] [--keep]

Sizes (participants / tip rows): 1k/10k, 10k/100k, 100k/1M, 1m/10M. The same size and
seed always give the same data: every random draw comes from `random.Random` streams
seeded from the seed, and every timestamp is relative to `REFERENCE_TIME`
(2025-01-01 UTC), so it lies before any payday started today.

What a community looks like:

* participants: 85% claimed (claim times spread over five years), 15% unclaimed
  stubs; `is_suspicious` 1% TRUE, 10% NULL (unreviewed), the rest FALSE;
  funding among the claimed: 35% a `balanced_account_uri`, 40% a `stripe_customer_id`,
  25% none. About 2% of routes contain `fail` (the sandbox declines them) and 3% of
  Balanced accounts contain `nomerchant` (no payout).
* tippers: 70% of the claimed. Each tips a handful of others (exponential, mean about
  12 pairs); tippees are drawn with power-law popularity (the top 1% of tippees get
  about a fifth of the tips), any participant can be a tippee, stubs included
  (pledges). Amounts come from Gittip's menu 0.25 / 1 / 3 / 6 / 12 / 24.
* histories: 70% of pairs have one row, 20% two, 10% three (the tip was changed);
  a third of the pairs with several rows end at 0 (the tip was stopped).
* balances: a third of the tippers have (almost) nothing and need a card charge;
  the others hold what covers all their current tips plus some change. Of the claimed
  non-tippers, 40% hold money received earlier (paid out if they can be).

It streams: participants are written as they are drawn; tips are drawn in a second
pass that replays the same per-tipper plans (the plan stream is re-seeded), so no
list of tips is ever held. Only two small arrays per participant are kept
(tipper flag, claim time). Rows are sent as COPY text with psycopg 3
(`cursor.copy`). Tips load fastest without their secondary indexes and foreign keys:
`load()` drops them for the COPY and recreates them afterwards from their own
definitions (`pg_get_indexdef`/`pg_get_constraintdef`), exactly like pg_restore.
Then VACUUM (FREEZE, ANALYZE).
"""
from __future__ import annotations

import argparse
import bisect
import math
import random
import sys
import time
from array import array
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

SIZES: dict[str, tuple[int, int]] = {
    "1k": (1_000, 10_000),
    "10k": (10_000, 100_000),
    "100k": (100_000, 1_000_000),
    "1m": (1_000_000, 10_000_000),
}
DEFAULT_SEED = 2013
REFERENCE_TIME = datetime(2025, 1, 1, tzinfo=timezone.utc)
REF = int(REFERENCE_TIME.timestamp())
YEAR = 365 * 86400

CLAIMED = 0.85
SUSPICIOUS = 0.01
UNREVIEWED = 0.10
BALANCED, STRIPE = 0.35, 0.40  # the rest of the claimed: no funding source
FAILING_ROUTE = 0.02
NOMERCHANT = 0.03
TIPPER = 0.70
SHORT_TIPPER = 1 / 3
RICH_NON_TIPPER = 0.40

MENU = ("0.25", "1.00", "3.00", "6.00", "12.00", "24.00")
MENU_CENTS = (25, 100, 300, 600, 1200, 2400)
MENU_WEIGHTS = (15, 35, 25, 12, 8, 5)
_CUM = [sum(MENU_WEIGHTS[: i + 1]) / sum(MENU_WEIGHTS) for i in range(len(MENU_WEIGHTS))]
HISTORY_ROWS = ((0.70, 1), (0.90, 2), (1.00, 3))  # cumulative share -> rows per pair
ROWS_PER_PAIR = 0.70 * 1 + 0.20 * 2 + 0.10 * 3
STOPPED_IF_CHANGED = 1 / 3
POPULARITY_EXPONENT = 3.0  # tippee rank = N * u**3: a power law
MAX_PAIRS = 400


@dataclass
class Stats:
    size: str
    seed: int
    participants: int = 0
    claimed: int = 0
    unreviewed: int = 0
    suspicious: int = 0
    with_balanced: int = 0
    with_stripe: int = 0
    failing_routes: int = 0
    tippers: int = 0
    short_tippers: int = 0
    tips: int = 0
    pairs: int = 0
    stopped_pairs: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_size(size: str) -> tuple[int, int]:
    key = size.lower()
    if key not in SIZES:
        raise ValueError(f"unknown size {size!r} (expected one of {', '.join(SIZES)})")
    return SIZES[key]


def username(i: int, width: int) -> str:
    return f"u{i:0{width}d}"


def _menu(r: float) -> int:
    return bisect.bisect_left(_CUM, r)


class _Planner:
    """Per-tipper tip plans (pairs x history amounts), drawn from their own stream so the
    participant pass (which needs the totals for the balance) and the tip pass (which
    writes the rows) see exactly the same plans."""

    def __init__(self, seed: int, n: int, n_tips: int):
        self.rng = random.Random(f"payday-bench-{seed}-plans")
        self.left = n_tips
        # Aim 5% over the target so the tip budget, not the participant list, ends first.
        expected_tippers = n * CLAIMED * TIPPER
        mean_pairs = 1.05 * n_tips / max(expected_tippers * ROWS_PER_PAIR, 1)
        self.mean_extra = max(mean_pairs - 1, 0.0)
        self.max_pairs = max(1, min(MAX_PAIRS, (n - 1) // 2))

    def plan(self) -> list[list[int]]:
        """Amounts in cents, one list per pair (oldest row first); [] once the budget is spent."""
        if self.left <= 0:
            return []
        rng = self.rng
        rand = rng.random
        k = min(1 + int(rng.expovariate(1 / self.mean_extra)) if self.mean_extra else 1, self.max_pairs)
        pairs: list[list[int]] = []
        for _ in range(k):
            r = rand()
            nrows = 1 if r < 0.70 else 2 if r < 0.90 else 3
            amounts = [MENU_CENTS[_menu(rand())] for _ in range(nrows)]
            if nrows > 1 and rand() < STOPPED_IF_CHANGED:
                amounts[-1] = 0
            if nrows > self.left:
                amounts = amounts[: self.left]  # the first row of a pair is never 0
            self.left -= len(amounts)
            pairs.append(amounts)
            if self.left <= 0:
                break
        return pairs


def _cents(c: int) -> str:
    return f"{c // 100}.{c % 100:02d}"


_MENU_TEXT = {c: _cents(c) for c in (0, *MENU_CENTS)}


class _Timestamps:
    """Epoch seconds -> timestamptz text, fast (day and time-of-day strings are cached)."""

    def __init__(self) -> None:
        self.days: dict[int, str] = {}
        self.clock = [f" {h:02d}:{m:02d}:{s:02d}+00" for h in range(24) for m in range(60) for s in range(60)]

    def __call__(self, t: int) -> str:
        d, s = divmod(t, 86400)
        day = self.days.get(d)
        if day is None:
            day = self.days[d] = datetime.fromtimestamp(d * 86400, timezone.utc).strftime("%Y-%m-%d")
        return day + self.clock[s]


def _coprime_multiplier(n: int) -> int:
    m = 2_654_435_761 % n if n > 1 else 1
    while n > 1 and math.gcd(m, n) != 1:
        m += 1
    return max(m, 1)


def participant_lines(n: int, n_tips: int, seed: int, stats: Stats,
                      flags: bytearray, claims: array) -> Iterator[str]:
    """COPY text lines for payday.participants; fills flags (1: tipper) and claims."""
    rng = random.Random(f"payday-bench-{seed}-participants")
    rand = rng.random
    planner = _Planner(seed, n, n_tips)
    ts = _Timestamps()
    width = len(str(n - 1))
    N = "\\N"
    for i in range(n):
        name = username(i, width)
        claimed = rand() < CLAIMED
        r = rand()
        suspicious = "t" if r < SUSPICIOUS else N if r < SUSPICIOUS + UNREVIEWED else "f"
        stats.suspicious += suspicious == "t"
        stats.unreviewed += suspicious == N
        buri = scid = N
        claim_text = N
        balance = 0
        ctime = REF - int(rand() * 6 * YEAR) - 86400
        if claimed:
            stats.claimed += 1
            claim = REF - 86400 - int(rand() * 5 * YEAR)
            claims[i] = claim
            ctime = min(ctime, claim)
            claim_text = ts(claim)
            r = rand()
            fails = rand() < FAILING_ROUTE
            if r < BALANCED:
                kind = "nomerchant-" if rand() < NOMERCHANT else ""
                buri = f"/v1/marketplaces/MP{seed}/accounts/AC{kind}{'fail-' if fails else ''}{i:x}"
                stats.with_balanced += 1
                stats.failing_routes += fails
            elif r < BALANCED + STRIPE:
                scid = f"cus_{'fail_' if fails else ''}{i:x}"
                stats.with_stripe += 1
                stats.failing_routes += fails
            if rand() < TIPPER:
                pairs = planner.plan()
                if pairs:
                    flags[i] = 1
                    stats.tippers += 1
                    stats.pairs += len(pairs)
                    stats.stopped_pairs += sum(1 for p in pairs if p[-1] == 0)
                    stats.tips += sum(len(p) for p in pairs)
                    current = sum(p[-1] for p in pairs)
                    if rand() < SHORT_TIPPER:
                        stats.short_tippers += 1
                        # Mostly nothing left; some a little, never all they owe.
                        balance = 0 if rand() < 0.7 else int(current * rand() * 0.8)
                    else:
                        balance = current + int(rand() * 932)
            elif rand() < RICH_NON_TIPPER:
                balance = int(rand() * 6000)
        stats.participants += 1
        yield (f"{name}\t{claim_text}\t{suspicious}\t{_cents(balance)}\t{buri}\t{scid}\t{ts(ctime)}\n")


def tip_lines(n: int, n_tips: int, seed: int, flags: bytearray, claims: array) -> Iterator[str]:
    """COPY text lines for payday.tips: the plans of participant_lines, with tippees and times."""
    planner = _Planner(seed, n, n_tips)
    rng = random.Random(f"payday-bench-{seed}-tips")
    rand = rng.random
    ts = _Timestamps()
    name = f"u%0{len(str(n - 1))}d"
    money = _MENU_TEXT
    mul = _coprime_multiplier(n)
    off = n // 3
    # Replay the participant pass's planner calls: one per claimed tipper candidate, in
    # order. participant_lines called plan() for every claimed participant that drew
    # "tipper"; flags marks those that got a non-empty plan, and plan() returns [] only
    # once the budget is spent, after which nobody is flagged. So calling plan() for
    # each flagged participant in order replays the same sequence.
    for i in range(n):
        if not flags[i]:
            continue
        pairs = planner.plan()
        tipper = name % i
        claim = claims[i]
        chosen = {i}
        for amounts in pairs:
            for _ in range(50):
                rank = int(n * rand() ** POPULARITY_EXPONENT)
                j = (rank * mul + off) % n
                if j not in chosen:
                    break
            else:
                j = next(x for x in range(n) if x not in chosen)
            chosen.add(j)
            pair = f"\t{tipper}\t{name % j}\t"
            end = REF - 3600
            t = claim + int(rand() * (end - claim))
            first = ts(t)
            for a in amounts:
                yield first + "\t" + ts(t) + pair + money[a] + "\n"
                t += 1 + int(rand() * (end - t) * 0.5)


def _copy(cur: psycopg.Cursor, statement: str, lines: Iterator[str], chunk: int = 4000) -> None:
    buf: list[str] = []
    with cur.copy(statement) as cp:
        for line in lines:
            buf.append(line)
            if len(buf) >= chunk:
                cp.write("".join(buf))
                buf.clear()
        if buf:
            cp.write("".join(buf))


def _secondary_objects(cur: psycopg.Cursor, table: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(name, definition) of the table's foreign keys and non-constraint indexes."""
    cur.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname", (table,))
    fks = [(r[0], r[1]) for r in cur.fetchall()]
    cur.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) "
        "ORDER BY c.relname", (table,))
    idx = [(r[0], r[1]) for r in cur.fetchall()]
    return fks, idx


def load(dsn: str, size: str, seed: int = DEFAULT_SEED, *, log: Any = None) -> Stats:
    """Fill an empty, migrated payday database with the community `size`; ANALYZE it."""
    n, n_tips = parse_size(size)
    stats = Stats(size=size, seed=seed)
    say = log or (lambda *a: None)
    flags = bytearray(n)
    claims = array("q", bytes(8 * n))
    with psycopg.connect(dsn, application_name="payday-bench-generate") as conn:
        cur = conn.cursor()
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET synchronous_commit = off")
        (existing,) = cur.execute("SELECT count(*) FROM payday.participants").fetchone()  # type: ignore[misc]
        if existing:
            raise RuntimeError("the database already has participants; generate into an empty one")
        t0 = time.perf_counter()
        _copy(cur, "COPY payday.participants (username, claimed_time, is_suspicious, balance, "
                   "balanced_account_uri, stripe_customer_id, ctime) FROM STDIN",
              participant_lines(n, n_tips, seed, stats, flags, claims))
        conn.commit()
        stats.seconds["participants"] = time.perf_counter() - t0
        say(f"  {stats.participants} participants in {stats.seconds['participants']:.1f}s")

        t0 = time.perf_counter()
        fks, idx = _secondary_objects(cur, "payday.tips")
        for name, _ in fks:
            cur.execute(sql.SQL("ALTER TABLE payday.tips DROP CONSTRAINT {}").format(sql.Identifier(name)))
        for name, _ in idx:
            cur.execute(sql.SQL("DROP INDEX payday.{}").format(sql.Identifier(name)))
        # The current tips are computed once, after the load (below), not by the insert
        # trigger from a transition table of every row.
        cur.execute("ALTER TABLE payday.tips DISABLE TRIGGER tips_current_insert")
        _copy(cur, "COPY payday.tips (ctime, mtime, tipper, tippee, amount) FROM STDIN",
              tip_lines(n, n_tips, seed, flags, claims))
        stats.seconds["tips"] = time.perf_counter() - t0
        say(f"  {stats.tips} tips in {stats.seconds['tips']:.1f}s")
        t0 = time.perf_counter()
        for _, definition in idx:
            cur.execute(definition)  # type: ignore[arg-type]
        for name, definition in fks:
            cur.execute(sql.SQL("ALTER TABLE payday.tips ADD CONSTRAINT {} {}").format(
                sql.Identifier(name), sql.SQL(definition)))  # type: ignore[arg-type]
        conn.commit()
        stats.seconds["indexes"] = time.perf_counter() - t0
        say(f"  indexes and foreign keys in {stats.seconds['indexes']:.1f}s")
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM (FREEZE, ANALYZE) payday.participants")
        conn.execute("VACUUM (FREEZE, ANALYZE) payday.tips")
    stats.seconds["vacuum_analyze"] = time.perf_counter() - t0
    say(f"  VACUUM (FREEZE, ANALYZE) in {stats.seconds['vacuum_analyze']:.1f}s")
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SELECT payday.rebuild_current_tips()")
            conn.execute("ALTER TABLE payday.tips ENABLE TRIGGER tips_current_insert")
        conn.execute("VACUUM (FREEZE, ANALYZE) payday.current_tips")
        conn.execute("ANALYZE")
    stats.seconds["current_tips"] = time.perf_counter() - t0
    say(f"  current tips in {stats.seconds['current_tips']:.1f}s")
    return stats


# -- databases --------------------------------------------------------------------------

def dsn_for(base_dsn: str, dbname: str) -> str:
    return make_conninfo(base_dsn, dbname=dbname)


def admin_dsn(base_dsn: str) -> str:
    return make_conninfo(base_dsn, dbname="postgres")


def create_database(base_dsn: str, name: str, template: str | None = None) -> str:
    """(Re)create database `name` (optionally as a copy of `template`); returns its DSN."""
    drop_database(base_dsn, name)
    with psycopg.connect(admin_dsn(base_dsn), autocommit=True) as conn:
        q = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            q = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        conn.execute(q)
    return dsn_for(base_dsn, name)


def drop_database(base_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn(base_dsn), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def fresh_community(base_dsn: str, name: str, size: str, seed: int = DEFAULT_SEED, *, log: Any = None) -> tuple[str, Stats]:
    """Create database `name`, migrate it (payday.migrate.upgrade), load `size`."""
    from payday import migrate

    dsn = create_database(base_dsn, name)
    t0 = time.perf_counter()
    migrate.upgrade(dsn)
    migrated = time.perf_counter() - t0
    stats = load(dsn, size, seed, log=log)
    stats.seconds = {"migrate": migrated, **stats.seconds}
    return dsn, stats


def charge_community_lines(n_chargers: int, n_tippees: int) -> tuple[Iterator[str], Iterator[str]]:
    """A community where exactly `n_chargers` whitelisted tippers with a card and no
    balance each owe one 1.00 tip to one of `n_tippees` claimed tippees: every one of
    them is due exactly one charge (used for the external-call figure)."""
    width = len(str(n_chargers + n_tippees))
    claim = "2024-06-01 00:00:00+00"

    def people() -> Iterator[str]:
        for i in range(n_tippees):
            yield f"t{i:0{width}d}\t{claim}\tf\t0.00\t\\N\t\\N\t{claim}\n"
        for i in range(n_chargers):
            yield f"c{i:0{width}d}\t{claim}\tf\t0.00\t\\N\tcus_bench_{i:x}\t{claim}\n"

    def tips() -> Iterator[str]:
        for i in range(n_chargers):
            yield f"{claim}\t{claim}\tc{i:0{width}d}\tt{i % n_tippees:0{width}d}\t1.00\n"

    return people(), tips()


def load_charge_community(dsn: str, n_chargers: int, n_tippees: int = 100) -> None:
    people, tips = charge_community_lines(n_chargers, n_tippees)
    with psycopg.connect(dsn) as conn:
        cur = conn.cursor()
        _copy(cur, "COPY payday.participants (username, claimed_time, is_suspicious, balance, "
                   "balanced_account_uri, stripe_customer_id, ctime) FROM STDIN", people)
        _copy(cur, "COPY payday.tips (ctime, mtime, tipper, tippee, amount) FROM STDIN", tips)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1k", help="1k, 10k, 100k or 1m (participants)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--dsn", default="host=127.0.0.1 user=postgres dbname=postgres",
                    help="libpq conninfo of the server (its dbname is only used to connect)")
    ap.add_argument("--dbname", default=None, help="database to (re)create (default bench_<size>)")
    args = ap.parse_args(argv)
    name = args.dbname or f"bench_{args.size.lower()}"
    t0 = time.perf_counter()
    dsn, stats = fresh_community(args.dsn, name, args.size, args.seed, log=print)
    print(f"{name}: {stats.as_dict()} ({time.perf_counter() - t0:.1f}s)")
    print(f"dsn: {dsn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

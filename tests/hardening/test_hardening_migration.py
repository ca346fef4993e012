"""Migration 0002: idempotent roles shared by every database of the cluster, an exact
downgrade, and a payday_sandbox schema that is the sandbox processor's own."""

from __future__ import annotations

import subprocess
import sys

import psycopg
from psycopg.conninfo import conninfo_to_dict

from payday import migrate
from payday.processors import sandbox

ROLES = ["payday_app", "payday_readonly", "payday_runner"]


def query(dsn: str, sql: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def grants(dsn: str) -> list[tuple]:
    """Every privilege held by one of the three roles in this database."""
    return query(dsn, """
        SELECT 'rel', c.oid::regclass::text, a.privilege_type, r.rolname
          FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee
         WHERE r.rolname LIKE 'payday\\_%'
        UNION ALL
        SELECT 'col', c.oid::regclass::text || '.' || t.attname, a.privilege_type, r.rolname
          FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid
          CROSS JOIN LATERAL aclexplode(t.attacl) a JOIN pg_roles r ON r.oid = a.grantee
         WHERE r.rolname LIKE 'payday\\_%'
        UNION ALL
        SELECT 'proc', p.oid::regprocedure::text, a.privilege_type, r.rolname
          FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a JOIN pg_roles r ON r.oid = a.grantee
         WHERE r.rolname LIKE 'payday\\_%'
        UNION ALL
        SELECT 'schema', n.nspname, a.privilege_type, r.rolname
          FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a JOIN pg_roles r ON r.oid = a.grantee
         WHERE r.rolname LIKE 'payday\\_%'
        ORDER BY 1, 2, 3, 4""")


def objects(dsn: str) -> set[tuple]:
    return set(query(dsn, """
        SELECT 'rel', c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname LIKE 'payday%'
        UNION ALL SELECT 'proc', p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname LIKE 'payday%'
        UNION ALL SELECT 'trigger', t.tgrelid::regclass::text || '.' || t.tgname FROM pg_trigger t
         JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname LIKE 'payday%' AND NOT t.tgisinternal
        UNION ALL SELECT 'schema', nspname FROM pg_namespace WHERE nspname LIKE 'payday%'
        UNION ALL SELECT 'default acl', d.defaclobjtype::text || coalesce(d.defaclacl::text, '') FROM pg_default_acl d"""))


def public_executes(dsn: str) -> int:
    return query(dsn, """
        SELECT count(*) FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
         WHERE p.pronamespace = 'payday'::regnamespace AND a.grantee = 0""")[0][0]


def test_roles_exist_once_for_the_cluster_and_survive_a_downgrade(empty_dsn: str) -> None:
    migrate.upgrade(empty_dsn, "0001")
    assert public_executes(empty_dsn) > 0
    before = objects(empty_dsn)
    migrate.upgrade(empty_dsn)  # the roles already exist (the template made them): no error
    assert migrate.current(empty_dsn) == migrate.head()
    assert grants(empty_dsn) and public_executes(empty_dsn) == 0
    migrate.downgrade(empty_dsn, "0001")
    assert grants(empty_dsn) == []
    assert public_executes(empty_dsn) > 0
    # Exactly what 0002 added is gone (reverse_transfer with the table it needs).
    assert objects(empty_dsn) == before - {("proc", "payday.reverse_transfer(bigint,text)")}
    assert sorted(r[0] for r in query(empty_dsn, "SELECT rolname FROM pg_roles WHERE rolname LIKE 'payday\\_%' "
                                      "AND NOT rolname LIKE 'payday\\_t\\_%'")) == ROLES  # left in place
    migrate.upgrade(empty_dsn)
    migrate.downgrade(empty_dsn, "base")
    assert query(empty_dsn, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'payday%'") == [(0,)]
    assert query(empty_dsn, "SELECT count(*) FROM pg_default_acl") == [(0,)]


def test_the_downgrade_keeps_a_sandbox_that_remembers_operations(empty_dsn: str) -> None:
    migrate.upgrade(empty_dsn)
    query(empty_dsn, "INSERT INTO payday_sandbox.operations (idempotency_key, kind, username, route, cents, "
                     "succeeded) VALUES ('payday-1-exchange-1', 'charge', 'alice', 'cus_alice', 1000, true) RETURNING 1")
    migrate.downgrade(empty_dsn, "0001")
    assert query(empty_dsn, "SELECT count(*) FROM payday_sandbox.operations") == [(1,)]
    migrate.downgrade(empty_dsn, "base")  # 0001 drops it with everything else
    assert query(empty_dsn, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'payday%'") == [(0,)]


def test_migrations_of_many_databases_at_once_share_the_roles(empty_dsn: str) -> None:
    """Roles are cluster-wide: concurrent migrations of different databases must not trip over
    each other creating them."""
    params = conninfo_to_dict(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        names = []
        for i in range(3):
            name = f"{params['dbname']}_{i}"
            conn.execute(f'CREATE DATABASE "{name}"')
            names.append(name)
    try:
        dsns = [psycopg.conninfo.make_conninfo(empty_dsn, dbname=n) for n in names]
        code = "import sys; from payday import migrate; migrate.upgrade(sys.argv[1])"
        procs = [subprocess.Popen([sys.executable, "-c", code, d], stderr=subprocess.PIPE, text=True) for d in dsns]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], errors
        for d in dsns:
            assert migrate.current(d) == migrate.head()
    finally:
        with psycopg.connect(empty_dsn, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_sandbox_schema_is_the_sandbox_processors_own(empty_dsn: str, dsn: str) -> None:
    """Migration 0002 creates payday_sandbox (the runner's role may not create schemas); it must
    be exactly what runner/processors/sandbox.py would have created."""
    describe = """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
          FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = 'payday_sandbox.operations'::regclass AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL
        SELECT conname, pg_get_constraintdef(oid), null, null FROM pg_constraint
         WHERE conrelid = 'payday_sandbox.operations'::regclass
         ORDER BY 1"""
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute(sandbox.SCHEMA_DDL)
    assert query(dsn, describe) == query(empty_dsn, describe)

"""The ordered-SQL migration runner on the real MariaDB, in a scratch database."""

from __future__ import annotations

import uuid

import pymysql
import pytest

from goodsdrop.settings import settings
from provision import migrations


@pytest.fixture
def scratch_db(servers):
    name = f"goodsdrop_t{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host=settings.mysql_host, port=settings.mysql_port, user=settings.mysql_user,
                            password=settings.mysql_password, autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    conn = pymysql.connect(host=settings.mysql_host, port=settings.mysql_port, user=settings.mysql_user,
                           password=settings.mysql_password, database=name,
                           cursorclass=pymysql.cursors.DictCursor)
    yield conn
    conn.close()
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE {name}")
    admin.close()


def test_applies_every_migration_once_in_order(scratch_db):
    applied = migrations.apply(scratch_db)
    assert applied == [m.name for m in migrations.discover()]
    assert migrations.apply(scratch_db) == []  # a second run is a no-op
    with scratch_db.cursor() as cur:
        cur.execute("SHOW TABLES")
        tables = {next(iter(row.values())) for row in cur.fetchall()}
    assert {"members", "sellers", "products", "stock", "orders", "order_products", "payments",
            "processed_events", "schema_migrations"} <= tables


def test_an_edited_migration_is_refused(scratch_db, tmp_path):
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (id INT PRIMARY KEY);\n")
    assert migrations.apply(scratch_db, tmp_path) == ["0001_first.sql"]
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (id BIGINT PRIMARY KEY);\n")
    with pytest.raises(migrations.MigrationError, match="changed after it was applied"):
        migrations.apply(scratch_db, tmp_path)


def test_new_migrations_apply_after_old_ones(scratch_db, tmp_path):
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (id INT PRIMARY KEY);\n")
    migrations.apply(scratch_db, tmp_path)
    (tmp_path / "0002_second.sql").write_text(
        "-- a comment\nALTER TABLE a ADD COLUMN b INT;\nINSERT INTO a VALUES (1, 2);\n")
    assert migrations.apply(scratch_db, tmp_path) == ["0002_second.sql"]
    with scratch_db.cursor() as cur:
        cur.execute("SELECT b FROM a")
        assert cur.fetchone()["b"] == 2


def test_badly_named_files_are_refused(tmp_path):
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError):
        migrations.discover(tmp_path)

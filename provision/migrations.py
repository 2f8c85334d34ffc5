"""A small ordered-SQL migration runner.

Why not Alembic or Flyway: the schema is plain SQL shared by MariaDB (local) and MySQL 8
(compose, AWS); a dozen lines that apply `db/migrations/NNNN_name.sql` in order, once each,
and refuse a file that changed after it was applied, are all this needs, with no ORM and no JVM.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goodsdrop.clients import mysql_connection

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "db" / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        """The file's statements: split at semicolons that end a line; comments dropped."""
        lines = [ln for ln in self.sql.splitlines() if not ln.strip().startswith("--")]
        return [s.strip() for s in re.split(r";\s*$", "\n".join(lines), flags=re.M) if s.strip()]


class MigrationError(RuntimeError):
    """A migration is malformed, or an applied one was edited."""


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in `directory`, ordered by version; versions must be unique."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: name it NNNN_lower_snake.sql")
        found.append(Migration(int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return found


def apply(conn: Any, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration in order; returns the names applied now."""
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INT PRIMARY KEY, name VARCHAR(200) NOT NULL, checksum CHAR(64) NOT NULL,"
            " applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))"
        )
        cur.execute("SELECT version, name, checksum FROM schema_migrations")
        applied = {row["version"] if isinstance(row, dict) else row[0]: row for row in cur.fetchall()}
    done: list[str] = []
    for migration in discover(directory):
        row = applied.get(migration.version)
        if row is not None:
            checksum = row["checksum"] if isinstance(row, dict) else row[2]
            if checksum != migration.checksum:
                raise MigrationError(f"{migration.name} changed after it was applied; add a new migration instead")
            continue
        with conn.cursor() as cur:
            # MySQL commits DDL implicitly, so each statement stands alone; the record comes last,
            # which makes a half-applied migration visible (and re-runnable once fixed).
            for statement in migration.statements():
                cur.execute(statement)
            cur.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
        conn.commit()
        done.append(migration.name)
    return done


def ensure_schema() -> list[str]:
    """Apply every pending migration to the configured database (settings: GOODSDROP_MYSQL_*)."""
    return apply(mysql_connection())

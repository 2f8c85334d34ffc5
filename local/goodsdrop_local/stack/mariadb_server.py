"""MariaDB for the local stack (Debian's `mariadbd`): its own data directory, the database and user."""

from __future__ import annotations

import getpass
import hashlib
import re
import shutil
import tempfile
from pathlib import Path

import pymysql

from goodsdrop.settings import settings
from goodsdrop_local.stack.server import HOST, STACK_DIR, Server, StackError, port_open, run_logged, which


class MariaDBServer(Server):
    """MariaDB with its own data directory; ensures the application database and user."""

    name = "mariadb"
    marker = "mariadbd"
    start_timeout = 60.0
    base_dir = STACK_DIR / "mariadb"
    data_dir = base_dir / "data"

    @property
    def socket_path(self) -> Path:
        path = self.base_dir / "mysqld.sock"
        if len(str(path)) < 100:  # AF_UNIX paths are limited to 107 bytes
            return path
        digest = hashlib.sha256(str(STACK_DIR).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"goodsdrop-{digest}-mysqld.sock"

    @property
    def ports(self) -> tuple[int, ...]:
        return (settings.mysql_port,)

    @property
    def address(self) -> str:
        s = settings
        return f"mysql://{s.mysql_user}@{HOST}:{s.mysql_port}/{s.mysql_database}"

    def prepare(self) -> None:
        if (self.data_dir / "mysql").is_dir():
            return
        fresh = self.base_dir / "data.new"
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        run_logged(
            [
                which("mariadb-install-db", "mysql_install_db"),
                "--no-defaults",
                f"--datadir={fresh}",
                f"--user={getpass.getuser()}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            self.log_path,
            "mariadb-install-db",
        )
        shutil.rmtree(self.data_dir, ignore_errors=True)
        fresh.rename(self.data_dir)

    def command(self) -> list[str]:
        return [
            which("mariadbd", "mysqld"),
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--port={settings.mysql_port}",
            f"--bind-address={HOST}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.base_dir / 'mariadbd.pid'}",
            f"--user={getpass.getuser()}",
            "--innodb-buffer-pool-size=256M",
            "--max-connections=500",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
        ]

    def _root(self) -> pymysql.connections.Connection:
        return pymysql.connect(
            unix_socket=str(self.socket_path), user="root", connect_timeout=2, autocommit=True
        )

    def healthy(self) -> bool:
        if not port_open(settings.mysql_port):
            return False
        with self._root() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone() == (1,)

    def after_start(self) -> None:
        """Ensure the database and the application user (for '%' and 'localhost')."""
        s = settings
        for name in (s.mysql_database, s.mysql_user):
            if not re.fullmatch(r"[A-Za-z0-9_]+", name):
                raise StackError(f"refusing unusual MySQL identifier {name!r}")
        db = s.mysql_database
        with self._root() as conn, conn.cursor() as cur:
            cur.execute("SELECT host FROM mysql.user WHERE user = ''")
            for (host,) in cur.fetchall():  # anonymous users would shadow ours on localhost
                cur.execute("DROP USER ''@%s", (host,))
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{db}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            for host in ("%", "localhost"):
                account = (s.mysql_user, host)
                password = (*account, s.mysql_password)
                cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", password)
                cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", password)
                cur.execute(f"GRANT ALL PRIVILEGES ON `{db}`.* TO %s@%s", account)
                # also `<db>_anything` (e.g. a separate test database)
                cur.execute(f"GRANT ALL PRIVILEGES ON `{db}\\_%%`.* TO %s@%s", account)


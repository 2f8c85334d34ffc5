"""What a login costs in CPU with scrypt N=2^14 (before) and N=2^17 (now): `python -m bench.login_cpu [-n 5]`

1. In this process, CPU seconds (time.process_time: other load on the machine hardly matters) to
   hash and to verify one password with each parameter set, and the memory scrypt needs for it.
2. With the stack running (`make up`), POST /auth/login over HTTP: the API workers' CPU per login
   (from /proc), for a member whose hash has today's parameters, and for the first login of a
   member with an old N=2^14 hash (verified at the old cost, then re-hashed at the new one).

The members it signs in as are its own (made and deleted here, sessions included): the demo data
is left as it was found. No timing is asserted anywhere; this prints a table.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import statistics
import time
import uuid
from collections.abc import Callable

import httpx

from bench.procs import StackCpu, delta
from goodsdrop import passwords
from goodsdrop.settings import settings

PASSWORD = "bench-login-pass-1"
BEFORE = (2**14, 8, 1)


def _old_hash(password: str) -> str:
    """A hash as the code before this change made them (N=2^14, r=8, p=1)."""
    n, r, p = BEFORE
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=passwords.MAXMEM)
    return f"scrypt${n}${r}${p}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _cpu_ms(fn: Callable[[], object], n: int) -> float:
    samples = []
    for _ in range(n):
        started = time.process_time()
        fn()
        samples.append((time.process_time() - started) * 1000)
    return statistics.median(samples)


def in_process(n: int) -> list[tuple[str, str, float, float]]:
    """(parameters, memory, hash ms, verify ms) for the old and the new parameters."""
    old, new = _old_hash(PASSWORD), passwords.hash_password(PASSWORD)
    rows = []
    for label, params, make, stored in (("before: N=2^14, r=8, p=1", BEFORE, lambda: _old_hash(PASSWORD), old),
                                        ("now:    N=2^17, r=8, p=1", (passwords.N, passwords.R, passwords.P),
                                         lambda: passwords.hash_password(PASSWORD), new)):
        memory = passwords.scrypt_memory(*params) / 2**20
        rows.append((label, f"{memory:.0f} MiB", _cpu_ms(make, n),
                     _cpu_ms(lambda stored=stored: passwords.verify_password(PASSWORD, stored), n)))
    return rows


def _member(password_hash: str) -> tuple[int, str]:
    from goodsdrop.clients import mysql_transaction

    email = f"bench-login-{uuid.uuid4().hex[:12]}@example.test"
    with mysql_transaction() as cur:
        cur.execute("INSERT INTO members (email, password_hash, name, email_verified) VALUES (%s, %s, %s, 1)",
                    (email, password_hash, "Bench Login"))
        return int(cur.lastrowid), email


def _forget(member_id: int, email: str) -> None:
    """Delete the bench's member (its sessions go with it) and what its logins left in Redis."""
    from goodsdrop import keys, sessions
    from goodsdrop.clients import mysql_cursor, redis_client

    with mysql_cursor() as cur:
        cur.execute("DELETE FROM members WHERE id = %s", (member_id,))
    for key, _ in sessions.login_throttles(email, "127.0.0.1", known_network=False)[:2]:  # its pair, its account
        redis_client().delete(key)
    redis_client().delete(keys.login_known_networks(sessions.login_digest(email)))


def over_http(n: int) -> list[tuple[str, float, float]] | None:
    """(case, API CPU ms per login, wall ms per login) over the running stack, or None when it is down."""
    api = f"http://127.0.0.1:{settings.api_port}"
    try:
        httpx.get(f"{api}/health", timeout=3)
    except httpx.HTTPError:
        return None
    cpu = StackCpu.find()
    rows = []
    with httpx.Client(base_url=api, timeout=60) as client:
        for label, make, count in (("login, today's hash", passwords.hash_password, n),
                                   ("first login, old N=2^14 hash (then re-hashed)", _old_hash, 1)):
            members = [_member(make(PASSWORD)) for _ in range(count)]
            try:
                before, started = cpu.snapshot(), time.perf_counter()
                for _, email in members:
                    response = client.post("/auth/login", json={"email": email, "password": PASSWORD})
                    response.raise_for_status()
                wall = (time.perf_counter() - started) * 1000 / count
                spent = delta(before, cpu.snapshot())
                rows.append((label, spent["api"] * 1000 / count, wall))
            finally:
                for member_id, email in members:
                    _forget(member_id, email)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5, help="hashes/verifications/logins per measurement")
    args = parser.parse_args()
    print(f"scrypt in this process (median CPU of {args.n}):")
    print(f"  {'parameters':<26} {'memory':>8} {'hash ms':>9} {'verify ms':>10}")
    rows = in_process(args.n)
    for label, memory, hashed, verified in rows:
        print(f"  {label:<26} {memory:>8} {hashed:>9.0f} {verified:>10.0f}")
    print(f"  ratio now/before: verify x{rows[1][3] / rows[0][3]:.1f}")
    http = over_http(args.n)
    if http is None:
        print("\nPOST /auth/login: the stack is not running (make up), skipped")
        return
    print("\nPOST /auth/login over HTTP (API workers' CPU from /proc, per login):")
    print(f"  {'case':<48} {'API CPU ms':>10} {'wall ms':>8}")
    for label, cpu_ms, wall_ms in http:
        print(f"  {label:<48} {cpu_ms:>10.0f} {wall_ms:>8.0f}")


if __name__ == "__main__":
    main()

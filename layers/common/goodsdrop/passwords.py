"""Password hashing: scrypt from the standard library, salted, with a self-describing format.

Cost: N=2**17, r=8, p=1 (OWASP's scrypt recommendation; 128 MiB and about half a second of one
core per hash on the dev machine, `python -m bench.login_cpu`), stored as
`scrypt$N$r$p$<salt b64>$<hash b64>` so the cost can rise without breaking old hashes: a hash made
with other parameters still verifies, and `needs_rehash` tells the login to store a new one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

N, R, P, DKLEN = 2**17, 8, 1, 32


def scrypt_memory(n: int, r: int, p: int) -> int:
    """Bytes scrypt needs for these parameters (OpenSSL's own count: the V array and the B blocks)."""
    return 128 * r * (n + 2) + 128 * r * p


# The ceiling OpenSSL enforces: enough for today's cost, so a stored hash with a larger N or r
# (a corrupted row) fails to verify instead of taking the container's memory.
MAXMEM = scrypt_memory(N, R, P) + 1024 * 1024


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=MAXMEM)


def hash_password(password: str) -> str:
    """A salted scrypt hash of `password` with today's parameters."""
    salt = os.urandom(16)
    digest = _scrypt(password, salt, N, R, P, DKLEN)
    return f"scrypt${N}${R}${P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _parts(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return None
        return int(n), int(r), int(p), base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except (ValueError, binascii.Error):
        return None


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (constant-time comparison; False for an unusable hash)."""
    parts = _parts(stored)
    if parts is None:
        return False
    n, r, p, salt, expected = parts
    try:
        actual = _scrypt(password, salt, n, r, p, len(expected))
    except ValueError:  # parameters OpenSSL refuses, or over MAXMEM
        return False
    return hmac.compare_digest(actual, expected)


def needs_rehash(stored: str) -> bool:
    """Whether `stored` was made with other parameters than today's (re-hash it at the next login)."""
    parts = _parts(stored)
    return parts is None or parts[:3] != (N, R, P) or len(parts[4]) != DKLEN

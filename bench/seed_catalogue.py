"""Seed a large catalogue for search benchmarks: `python -m bench.seed_catalogue --products 100000`.

Adds seeded sellers (seed-seller-N@seed.goodsdrop.local) and products with their stock rows in
multi-row INSERTs of `--batch` rows, one transaction per batch, until `--products` seeded products
exist (running it twice does not double them). The data is reproducible (`--seed`) and mixed like
a real shop: English and Korean names, prices from 1,000 to 500,000 won, about 5 % sold out,
about 5 % upcoming, a few with a per-member limit, created over the past year.
`--remove` deletes every seeded product, stock row and seller again.

Runs against the local stack of this checkout (GOODSDROP_PORT_OFFSET applies, as everywhere).
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta

from goodsdrop.clients import mysql_connection
from goodsdrop.passwords import hash_password

SEED_DOMAIN = "seed.goodsdrop.local"
SELLER_PASSWORD = "seed-pass-1"

ADJECTIVES = ["Limited", "Classic", "Deluxe", "Mini", "Signed", "Vintage", "Glow", "Pastel", "Midnight", "Golden",
              "Retro", "Winter", "Spring", "Summer", "Autumn", "Neon", "Crystal", "Velvet", "Cosmic", "Tiny",
              "한정판", "빈티지", "미니", "골드", "블루"]
THINGS = ["Figure", "Acrylic Stand", "Enamel Pin", "Hoodie", "Art Book", "Sticker Pack", "Poster", "Keyring",
          "Tote Bag", "Mug", "Vinyl LP", "Cassette", "Photo Card", "Light Stick", "Plush", "Deskmat", "Keycap",
          "Model Kit", "Music Box", "Scarf", "Notebook", "Candle", "Jigsaw", "Lamp", "Cap",
          "피규어", "아크릴 스탠드", "포토카드", "키링", "머그컵"]
SERIES = ["Aoi", "Hoshino", "Moonlight", "Pixel", "Sakura", "Nova", "Orion", "Luna", "Mira", "Haneul", "Byeol",
          "Dal", "Aria", "Echo", "Kite", "Juniper", "Quartz", "Saturn", "Tango", "Umbra"]
PHRASES = ["hand-painted", "numbered box", "from the winter tour", "waterproof vinyl", "gold plating",
           "heavyweight cotton", "ships in spring", "signed by the artist", "180 g vinyl", "limited pressing",
           "glow in the dark", "with display base", "official merchandise", "collector's edition",
           "recycled materials", "made in Seoul", "한정 수량", "공식 굿즈", "사인 포함", "초회 한정"]


def _row(rng: random.Random, now: datetime, seller_ids: list[int]) -> tuple:
    name = f"{rng.choice(ADJECTIVES)} {rng.choice(THINGS)}: {rng.choice(SERIES)} #{rng.randint(1, 999)}"
    description = ", ".join(rng.sample(PHRASES, 3)).capitalize() + "."
    price = rng.randint(10, 5000) * 100
    roll = rng.random()
    if roll < 0.05:
        start = now + timedelta(minutes=rng.randint(10, 30 * 24 * 60))  # upcoming
    elif roll < 0.15:
        start = now - timedelta(minutes=rng.randint(10, 90 * 24 * 60))  # opened already
    else:
        start = None
    limit = rng.randint(1, 5) if rng.random() < 0.2 else None
    created = now - timedelta(seconds=rng.randint(0, 365 * 24 * 3600), milliseconds=rng.randint(0, 999))
    units = 0 if rng.random() < 0.05 else rng.randint(1, 1000)
    return rng.choice(seller_ids), name, description, price, start, limit, created, units


def ensure_sellers(cur, count: int) -> list[int]:
    """The ids of `count` seeded sellers (created when missing)."""
    cur.execute("SELECT id FROM members WHERE email LIKE %s ORDER BY id", (f"%@{SEED_DOMAIN}",))
    ids = [int(r["id"]) for r in cur.fetchall()]
    if len(ids) < count:
        password_hash = hash_password(SELLER_PASSWORD)  # one hash for all seeded accounts: bench data only
        for i in range(len(ids), count):
            cur.execute("INSERT INTO members (email, password_hash, name, email_verified, role) "
                        "VALUES (%s, %s, %s, 1, 'seller')",
                        (f"seed-seller-{i}@{SEED_DOMAIN}", password_hash, f"Seed Seller {i}"))
            member_id = int(cur.lastrowid)
            cur.execute("INSERT INTO sellers (member_id, shop_name, address, contact_number, registration_number) "
                        "VALUES (%s, %s, %s, %s, %s)",
                        (member_id, f"Seed Shop {i}", f"{i} Seed-ro, Seoul", "02-000-0000", f"seed-{i:06d}"))
            ids.append(member_id)
    return ids[:count]


def seeded_products(cur, seller_ids: list[int]) -> int:
    cur.execute("SELECT COUNT(*) AS n FROM products WHERE seller_id IN %s", (seller_ids,))
    return int(cur.fetchone()["n"])


def seed(products: int, sellers: int, batch: int, rng_seed: int) -> None:
    conn = mysql_connection()
    rng = random.Random(rng_seed)
    now = datetime.now(UTC).replace(tzinfo=None)
    with conn.cursor() as cur:
        cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
        conn.begin()
        seller_ids = ensure_sellers(cur, sellers)
        conn.commit()
        missing = products - seeded_products(cur, seller_ids)
        print(f"seed_catalogue: {len(seller_ids)} sellers; adding {max(missing, 0)} products")
        started = time.monotonic()
        added = 0
        while added < missing:
            rows = [_row(rng, now, seller_ids) for _ in range(min(batch, missing - added))]
            values = ",".join(cur.mogrify("(%s,%s,%s,%s,%s,%s,%s,%s)", (*r[:7], r[6])) for r in rows)
            conn.begin()
            cur.execute("INSERT INTO products (seller_id, name, description, price, sales_start_at, "
                        f"per_member_limit, created_at, updated_at) VALUES {values}")
            # One multi-row INSERT takes consecutive ids (innodb_autoinc_lock_mode 0 or 1; MariaDB's default is 1).
            first_id, inserted = int(cur.lastrowid), cur.rowcount
            assert inserted == len(rows), (inserted, len(rows))
            stock_values = ",".join(cur.mogrify("(%s,%s)", (first_id + i, r[7])) for i, r in enumerate(rows))
            cur.execute(f"INSERT INTO stock (product_id, count) VALUES {stock_values}")
            conn.commit()
            added += len(rows)
            if added % (batch * 10) == 0 or added == missing:
                elapsed = time.monotonic() - started
                print(f"  {added:>8} products  {elapsed:6.1f} s  ({added / max(elapsed, 1e-9):,.0f}/s)", flush=True)
        cur.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")
        cur.execute("ANALYZE TABLE products, stock")
        cur.fetchall()
        print(f"seed_catalogue: {seeded_products(cur, seller_ids)} seeded products in total")


def remove() -> None:
    conn = mysql_connection()
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM members WHERE email LIKE %s", (f"%@{SEED_DOMAIN}",))
        ids = [int(r["id"]) for r in cur.fetchall()]
        if not ids:
            print("seed_catalogue: nothing seeded")
            return
        conn.begin()
        cur.execute("DELETE s FROM stock s JOIN products p ON p.id = s.product_id WHERE p.seller_id IN %s", (ids,))
        cur.execute("DELETE FROM products WHERE seller_id IN %s", (ids,))
        removed = cur.rowcount
        cur.execute("DELETE FROM sellers WHERE member_id IN %s", (ids,))
        cur.execute("DELETE FROM members WHERE id IN %s", (ids,))
        conn.commit()
        print(f"seed_catalogue: removed {removed} products and {len(ids)} sellers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000, help="seeded products wanted in total")
    parser.add_argument("--sellers", type=int, default=200)
    parser.add_argument("--batch", type=int, default=2_000, help="rows per INSERT and per transaction")
    parser.add_argument("--seed", type=int, default=7, help="random seed (reproducible data)")
    parser.add_argument("--remove", action="store_true", help="delete the seeded data instead")
    args = parser.parse_args()
    if args.remove:
        remove()
    else:
        seed(args.products, args.sellers, args.batch, args.seed)


if __name__ == "__main__":
    main()

"""Demo data for `make up`: known accounts, four sellers' catalogues (55 products), and a drop.

Accounts (also in the README): buyer@goodsdrop.local / buyer-pass-1 (verified member) and
seller@goodsdrop.local / seller-pass-1 (verified seller, shop "Drop Studio"). The other three
sellers (hana@, moonlight@, pixel@goodsdrop.local) sign in with seller-pass-1 too.
operator@goodsdrop.local / operator-pass-1 is an operator: the drop dashboard shows them every drop.

The limited drop is the first product, "Hoshino Figure 1/7" (500 units, 2 per member): it opens
a few minutes after `make up`. Every `make up` re-arms it while nothing of it has been sold or
reserved, so a fresh demo always has a drop about to open. "Tour Hoodie (M)" is sold out.

Loading is idempotent and additive: missing accounts, shops and products are inserted; what is
there is left alone (a product is known by its seller and name).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from goodsdrop import keys
from goodsdrop.clients import fetch_one, mysql_transaction, redis_client
from goodsdrop.clock import db_now
from goodsdrop.passwords import hash_password

BUYER = ("buyer@goodsdrop.local", "buyer-pass-1", "Demo Buyer")
SELLER = ("seller@goodsdrop.local", "seller-pass-1", "Demo Seller")
OPERATOR = ("operator@goodsdrop.local", "operator-pass-1", "Drop Operator")
DROP_NAME = "Hoshino Figure 1/7"
DROP_STOCK = 500
DROP_OPENS_IN_MINUTES = 5

# email, password, name, shop name, address, contact number, registration number
SELLERS = [
    (*SELLER, "Drop Studio", "12 Seongsu-ro, Seoul", "02-555-0100", "123-45-67890"),
    ("hana@goodsdrop.local", "seller-pass-1", "Hana Kim", "Hana Craft", "8 Yeonnam-ro, Seoul", "02-555-0200",
     "234-56-78901"),
    ("moonlight@goodsdrop.local", "seller-pass-1", "Joon Park", "Moonlight Records", "31 Haeundae-ro, Busan",
     "051-555-0300", "345-67-89012"),
    ("pixel@goodsdrop.local", "seller-pass-1", "Mina Lee", "Pixel Arcade Goods", "5 Pangyo-ro, Seongnam",
     "031-555-0400", "456-78-90123"),
]

# shop → products: name, description, price (won), stock, starts in (minutes; None = on sale), per-member limit
CATALOGUE: dict[str, list[tuple[str, str, int, int, int | None, int | None]]] = {
    "Drop Studio": [
        (DROP_NAME, "Limited drop: hand-painted scale figure, numbered box", 189000, DROP_STOCK,
         DROP_OPENS_IN_MINUTES, 2),
        ("Acrylic Stand Set", "Five acrylic stands from the spring event", 25000, 120, None, None),
        ("Enamel Pin: Moon", "Hard enamel pin with gold plating", 9000, 300, None, 5),
        ("Tour Hoodie (M)", "Heavyweight hoodie from the winter tour", 69000, 0, None, None),
        ("Art Book Vol. 2", "96 pages of illustrations and sketches", 42000, 80, None, None),
        ("Sticker Pack", "Twelve vinyl stickers, waterproof", 6000, 1000, None, None),
        ("Hoshino Figure 1/7 (Display Base)", "Clear acrylic display base made for the 1/7 figure", 15000, 200,
         None, None),
        ("Nendo-style Mini Figure: Aoi", "Chibi figure with three swappable faces", 54000, 60, None, 3),
        ("Tour Hoodie (L)", "Heavyweight hoodie from the winter tour, large", 69000, 14, None, 2),
        ("Tour Cap", "Embroidered six-panel cap, adjustable strap", 32000, 75, None, None),
        ("Art Book Vol. 3 (Pre-order)", "The next art book: 128 pages, ships in spring", 45000, 400,
         3 * 24 * 60, 2),
        ("Signed Poster A2", "A2 poster signed by the illustrator, tube shipped", 38000, 30, None, 1),
        ("Keyring: Star Charm", "Metal keyring with a glitter star charm", 8000, 500, None, None),
        ("Canvas Tote Bag", "Heavy canvas tote with the studio logo", 19000, 150, None, None),
    ],
    "Hana Craft": [
        ("Hand-thrown Mug: Celadon", "Stoneware mug with a celadon glaze, 350 ml", 36000, 40, None, 2),
        ("Hand-thrown Mug: Ash", "Stoneware mug with an ash glaze, 350 ml", 36000, 35, None, 2),
        ("Ceramic Incense Holder", "Small wheel-thrown incense holder", 18000, 90, None, None),
        ("Linen Tea Towel", "Washed linen tea towel, natural colour", 14000, 200, None, None),
        ("Bojagi Wrapping Cloth", "Patchwork wrapping cloth sewn by hand", 48000, 25, None, 1),
        ("Wooden Spoon Set", "Three walnut spoons, oiled", 27000, 60, None, None),
        ("Hanji Notebook", "Notebook bound with Korean mulberry paper", 12000, 300, None, None),
        ("Brass Bookmark", "Etched brass bookmark with a magpie", 9500, 250, None, None),
        ("Moon Jar Miniature", "A palm-sized porcelain moon jar", 52000, 15, None, 1),
        ("Indigo Dyed Scarf", "Silk scarf dyed with natural indigo", 64000, 20, None, 1),
        ("Celadon Bowl (Large)", "Serving bowl with a crackled celadon glaze", 58000, 12, None, 1),
        ("Spring Workshop Kit", "Make-your-own ceramic kit, opens with the spring workshop", 42000, 100,
         2 * 24 * 60, 1),
        ("Soy Candle: Pine", "Hand-poured soy candle, 40 hours", 22000, 0, None, None),
    ],
    "Moonlight Records": [
        ("Vinyl LP: Midnight Seoul", "180 g vinyl, gatefold sleeve, 12 tracks", 42000, 150, None, 2),
        ("Vinyl LP: Busan Nights (Blue)", "Limited blue pressing, numbered", 49000, 70, None, 1),
        ("Cassette: Summer Demos", "Chrome cassette with a fold-out j-card", 15000, 200, None, None),
        ("CD: Live at Rolling Hall", "Live album with a 24-page booklet", 18000, 300, None, None),
        ("Tour T-shirt (S)", "Cotton tee from the autumn tour", 35000, 45, None, None),
        ("Tour T-shirt (M)", "Cotton tee from the autumn tour", 35000, 80, None, None),
        ("Tour T-shirt (L)", "Cotton tee from the autumn tour", 35000, 60, None, None),
        ("Slipmat", "Felt turntable slipmat with the moon logo", 16000, 120, None, None),
        ("Lyric Zine", "Risograph zine of handwritten lyrics", 11000, 250, None, None),
        ("Photo Card Set", "Eight photo cards from the studio sessions", 13000, 400, None, 5),
        ("Light Stick", "Official light stick with Bluetooth sync", 45000, 90, None, 2),
        ("Vinyl LP: Winter Single (Pre-order)", "7-inch single, ships with the winter release", 25000, 300,
         7 * 24 * 60, 2),
        ("Backstage Pass Lanyard", "Replica lanyard from the anniversary show", 12000, 180, None, None),
    ],
    "Pixel Arcade Goods": [
        ("Pixel Art Print: Castle", "Giclée print of a 16-bit castle, A3", 28000, 100, None, None),
        ("Pixel Art Print: Ocean", "Giclée print of a 16-bit ocean, A3", 28000, 100, None, None),
        ("Retro Controller Keycap", "Resin keycap shaped like a classic controller", 21000, 150, None, 3),
        ("Mechanical Keyboard Deskmat", "900 x 400 mm deskmat with a pixel city", 33000, 80, None, None),
        ("Arcade Token Necklace", "Brass arcade token on a chain", 24000, 60, None, None),
        ("8-bit Plush: Slime", "Soft plush of the green slime, 25 cm", 29000, 110, None, 3),
        ("8-bit Plush: Ghost", "Soft plush of the white ghost, 25 cm", 29000, 95, None, 3),
        ("Sprite Sticker Sheet", "Sixty tiny sprite stickers", 5000, 800, None, None),
        ("Game Cartridge Replica", "Display replica of a golden cartridge", 39000, 40, None, 2),
        ("Pixel Hoodie", "Hoodie with an embroidered pixel heart", 59000, 55, None, None),
        ("Boss Battle Jigsaw", "1000-piece jigsaw of the final boss", 26000, 70, None, None),
        ("Limited Pin Set: Power-ups", "Four enamel pins, numbered, one set per member", 30000, 0, None, 1),
        ("Arcade Cabinet Model Kit", "1/12 scale model kit of an upright cabinet", 75000, 50, None, 1),
        ("LED Pixel Lamp", "Desk lamp that shows pixel animations", 68000, 35, None, 1),
        ("Bit Tune Music Box", "Hand-cranked music box playing the title theme", 34000, 65, None, None),
    ],
}


def _member(cur, email: str, password: str, name: str, role: str) -> int:
    cur.execute("SELECT id FROM members WHERE email = %s", (email,))
    row = cur.fetchone()
    if row is not None:
        return int(row["id"])
    cur.execute("INSERT INTO members (email, password_hash, name, email_verified, role) VALUES (%s, %s, %s, 1, %s)",
                (email, hash_password(password), name, role))
    return int(cur.lastrowid)


def _rearm_drop(cur, seller_id: int, now: datetime) -> bool:
    """Move the drop's opening to a few minutes from now if it passed with nothing sold or reserved."""
    cur.execute("SELECT p.id, p.sales_start_at, s.count FROM products p JOIN stock s ON s.product_id = p.id "
                "WHERE p.seller_id = %s AND p.name = %s", (seller_id, DROP_NAME))
    row = cur.fetchone()
    if row is None or row["sales_start_at"] is None or row["sales_start_at"] > now or row["count"] != DROP_STOCK:
        return False
    cur.execute("SELECT 1 FROM order_products WHERE product_id = %s LIMIT 1", (row["id"],))
    reserved = redis_client().hget(keys.stock(row["id"]), "reserved")
    if cur.fetchone() is not None or int(reserved or 0) > 0:
        return False
    cur.execute("UPDATE products SET sales_start_at = %s WHERE id = %s",
                (now + timedelta(minutes=DROP_OPENS_IN_MINUTES), row["id"]))
    redis_client().delete(keys.product_detail(row["id"]))
    return True


def load() -> str:
    """Insert whatever demo data is missing; returns what it did."""
    now = db_now()
    added_products = 0
    with mysql_transaction() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM members WHERE email IN %s",
                    ([BUYER[0], OPERATOR[0], *(s[0] for s in SELLERS)],))
        known_accounts = int(fetch_one(cur)["n"])
        # Ids on a fresh database: buyer 1, the Drop Studio seller 2 (events/*.json act as member 2), then
        # the other sellers and the operator; an account added later goes last so those ids never move.
        _member(cur, *BUYER, "member")
        seller_ids = {}
        for email, password, name, shop, address, contact, registration in SELLERS:
            member_id = seller_ids[shop] = _member(cur, email, password, name, "seller")
            cur.execute("INSERT IGNORE INTO sellers (member_id, shop_name, address, contact_number, "
                        "registration_number) VALUES (%s, %s, %s, %s, %s)",
                        (member_id, shop, address, contact, registration))
        _member(cur, *OPERATOR, "operator")
        for shop, products in CATALOGUE.items():
            seller_id = seller_ids[shop]
            cur.execute("SELECT name FROM products WHERE seller_id = %s", (seller_id,))
            existing = {row["name"] for row in cur.fetchall()}
            for name, description, price, stock, starts_in, limit in products:
                if name in existing:
                    continue
                start = now + timedelta(minutes=starts_in) if starts_in is not None else None
                cur.execute(
                    "INSERT INTO products (seller_id, name, description, price, sales_start_at, per_member_limit) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    (seller_id, name, description, price, start, limit),
                )
                cur.execute("INSERT INTO stock (product_id, count) VALUES (%s, %s)", (cur.lastrowid, stock))
                added_products += 1
        rearmed = _rearm_drop(cur, seller_ids["Drop Studio"], now)
    accounts = 2 + len(SELLERS) - known_accounts
    parts = [f"{added_products} products and {accounts} accounts added"]
    if rearmed:
        parts.append(f"drop re-armed to open in {DROP_OPENS_IN_MINUTES} min")
    return ", ".join(parts) if added_products or accounts or rearmed else "already loaded"

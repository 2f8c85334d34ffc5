-- Order lines keep the product's name as it was when the order was placed (issue 20): a buyer's
-- order history reads the same after the seller renames or deletes the product. Lines placed
-- before this migration have none: readers fall back to the product's current name.
-- (The unit price at purchase was always kept: order_products.price.)
ALTER TABLE order_products ADD COLUMN product_name VARCHAR(200) NULL;

-- A verification link that a resend replaced says so ("replaced by a newer link", 410
-- VERIFICATION_LINK_REPLACED) instead of "already used", which it never was.
ALTER TABLE email_verifications ADD COLUMN replaced_at DATETIME(3) NULL;

// GoodsDrop storefront: plain JS over the HTTP contract (shared/api-contract.md).
// Live stock comes from the SSE container. config.js names the API and stream bases; by default the
// API is this page's origin and the stream the next port on the same host.
"use strict";

const CONFIG = window.GOODSDROP_CONFIG || {};
const API = (CONFIG.api || location.origin).replace(/\/+$/, "");
const STREAM = (CONFIG.stream || `${location.protocol}//${location.hostname}:${Number(location.port || 3000) + 1}`).replace(/\/+$/, "");
const view = document.getElementById("view");
const won = (n) => `₩${Number(n).toLocaleString("ko-KR")}`;
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
let liveStream = null;
let timers = [];

// ---- session -------------------------------------------------------------------------------
const session = {
  get access() { return localStorage.getItem("gd.access"); },
  get refresh() { return localStorage.getItem("gd.refresh"); },
  save(tokens) { localStorage.setItem("gd.access", tokens.accessToken); localStorage.setItem("gd.refresh", tokens.refreshToken); renderNav(); },
  clear() { localStorage.removeItem("gd.access"); localStorage.removeItem("gd.refresh"); renderNav(); },
};

// The signed-in member's role, from the access token's claims (only to show links; the API decides).
function role() {
  try { return JSON.parse(atob(session.access.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).role; }
  catch (_) { return null; }
}

function renderNav() {
  document.getElementById("nav-login").hidden = !!session.access;
  document.getElementById("nav-logout").hidden = !session.access;
  document.getElementById("nav-dashboard").hidden = !["seller", "operator"].includes(session.access && role());
}

function showMessage(text, ok = false) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.className = ok ? "ok" : "";
  box.hidden = !text;
}

// Readable text for the contract's error document.
const MESSAGES = {
  OUT_OF_STOCK: "Sorry, it is sold out.", PURCHASE_LIMIT_EXCEEDED: "You have reached the purchase limit for this item.",
  NOT_ON_SALE: "This drop has not opened yet.", EMAIL_NOT_VERIFIED: "Please verify your email address before buying.",
  UNAUTHORIZED: "Please log in.", TOKEN_EXPIRED: "Your session expired; please log in again.",
  RATE_LIMITED: "Too many attempts; please wait a moment.", VALIDATION_ERROR: "Please check what you entered.",
  QUEUE_REQUIRED: "This drop is busy: joining the line…",
  CHECKOUT_PENDING: "Your cart is being ordered; it changes again once that order is confirmed or failed.",
};

async function api(method, path, body, { auth = true, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  if (auth && session.access) init.headers.Authorization = `Bearer ${session.access}`;
  let response = await fetch(API + path, init);
  if (response.status === 401 && auth && session.refresh && path !== "/auth/refresh") {
    const refreshed = await fetch(API + "/auth/refresh", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ refreshToken: session.refresh }) });
    if (refreshed.ok) { session.save(await refreshed.json()); init.headers.Authorization = `Bearer ${session.access}`; response = await fetch(API + path, init); }
    else session.clear();
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || { code: "ERROR", message: response.statusText };
    const err = new Error(MESSAGES[error.code] || error.message || "Something went wrong.");
    err.code = error.code; err.status = response.status; err.details = error.details;
    throw err;
  }
  return data;
}

// Send the visitor to the login page, and back to where they were once logged in.
function requireLogin() {
  if (location.hash !== "#/login") sessionStorage.setItem("gd.returnTo", location.hash || "#/");
  go("#/login");
}

function stopLive() {
  if (liveStream) { liveStream.close(); liveStream = null; }
  timers.forEach(clearInterval); timers = [];
}

// ---- views ---------------------------------------------------------------------------------
async function catalogue(params) {
  const query = new URLSearchParams({ size: "24", sort: "newest", ...params });
  const page = await api("GET", `/products?${query}`, undefined, { auth: false });
  view.innerHTML = `<h1>${params.q ? `Results for “${esc(params.q)}”` : "Goods"}</h1>
    <div class="grid">${page.items.map((p) => `
      <a class="card" href="#/product/${esc(p.id)}" data-product="${esc(p.id)}">
        <h3>${esc(p.name)}</h3><div class="price">${won(p.price)}</div>
        <span class="badge ${esc(p.status)}">${esc(p.status).replace("_", " ")}</span>
      </a>`).join("") || "<p>Nothing found.</p>"}</div>
    <div class="pager">${page.total} item(s) · page ${page.page}</div>`;
}

function countdown(target, element, onDone) {
  const tick = () => {
    const left = Math.max(0, target - Date.now());
    const s = Math.floor(left / 1000);
    element.textContent = `${String(Math.floor(s / 3600)).padStart(2, "0")}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
    if (left <= 0) { clearInterval(timer); onDone(); }
  };
  const timer = setInterval(tick, 250); timers.push(timer); tick();
}

async function product(id) {
  const p = await api("GET", `/products/${encodeURIComponent(id)}`, undefined, { auth: false });
  const initial = Math.max(p.stock, 1);
  view.innerHTML = `<article class="product">
    <h1>${esc(p.name)}</h1><p>${esc(p.description)}</p>
    <p class="price">${won(p.price)} ${p.perMemberLimit ? `· limit ${esc(p.perMemberLimit)} per member` : ""}</p>
    <div id="opens" ${p.status === "upcoming" ? "" : "hidden"}>Opens in <span class="countdown" id="countdown"></span></div>
    <p>Stock: <strong id="stock">${esc(p.stock)}</strong> · <span id="status" class="badge ${esc(p.status)}">${esc(p.status)}</span></p>
    <div class="stockbar"><div id="stockbar" style="width:${Math.min(100, (p.stock / initial) * 100)}%"></div></div>
    <label>Quantity <input id="qty" type="number" min="1" max="${esc(p.perMemberLimit || 99)}" value="1"></label>
    <p><button class="primary" id="buy" ${p.status === "on_sale" ? "" : "disabled"}>Buy now</button>
       <button id="add-to-cart">Add to cart</button></p>
  </article>`;
  let status = p.status;
  const setStock = (stock, newStatus) => {
    document.getElementById("stock").textContent = stock;
    document.getElementById("stockbar").style.width = `${Math.min(100, (stock / initial) * 100)}%`;
    status = newStatus; const badge = document.getElementById("status");
    badge.textContent = newStatus; badge.className = `badge ${newStatus}`;
    document.getElementById("buy").disabled = newStatus !== "on_sale";
  };
  if (p.status === "upcoming" && p.salesStartAt) {
    countdown(Date.parse(p.salesStartAt), document.getElementById("countdown"), () => {
      document.getElementById("opens").hidden = true;
      if (status === "upcoming") setStock(document.getElementById("stock").textContent, "on_sale");
    });
  }
  liveStream = new EventSource(`${STREAM}/stream/products/${encodeURIComponent(id)}/stock`);
  liveStream.addEventListener("stock", (event) => { const s = JSON.parse(event.data); setStock(s.stock, s.status); });
  document.getElementById("buy").onclick = () => placeOrder({ items: [{ productId: p.id, quantity: Number(document.getElementById("qty").value) }] });
  document.getElementById("add-to-cart").onclick = async () => {
    if (!session.access) return requireLogin();
    try { await api("POST", "/cart/items", { productId: p.id, quantity: Number(document.getElementById("qty").value) }); showMessage("Added to your cart.", true); }
    catch (err) { showMessage(err.message); }
  };
}

async function placeOrder(order) {
  if (!session.access) return requireLogin();
  const button = document.getElementById("buy") || document.getElementById("checkout");
  if (button) button.disabled = true;
  // One key for this purchase, kept through the waiting room: a retry can never buy twice.
  const key = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
  const send = async () => {
    try {
      const placed = await api("POST", "/orders", { ...order, paymentToken: "tok_ok" }, { headers: { "Idempotency-Key": key } });
      go(`#/order/${placed.orderId}`);
    } catch (err) {
      if (err.code === "QUEUE_REQUIRED") return waitInLine(err.details.queue, send, button);
      showMessage(err.message); if (button) button.disabled = false;
    }
  };
  await send();
}

// The drop's waiting room is open: take a ticket, show the place in line, order once admitted.
async function waitInLine(queue, send, button) {
  const fail = (err) => { showMessage(err.message); if (button) button.disabled = false; };
  const show = (s) => showMessage(s.admitted ? "It is your turn: placing your order…"
    : `You are number ${s.position} in line${s.estimatedWaitSeconds ? ` (about ${s.estimatedWaitSeconds} s)` : ""}.`, true);
  let standing;
  // The room may have closed meanwhile (NO_WAITING_ROOM): then the order goes through directly.
  try { standing = await api("POST", queue); } catch (err) { return err.code === "NO_WAITING_ROOM" ? send() : fail(err); }
  show(standing);
  if (standing.admitted) return send();
  const timer = setInterval(async () => {
    try { standing = await api("GET", `${queue}/${encodeURIComponent(standing.ticket)}`); } catch (err) { clearInterval(timer); return err.code === "NO_WAITING_ROOM" ? send() : fail(err); }
    show(standing);
    if (standing.admitted) { clearInterval(timer); await send(); }
  }, 2000);
  timers.push(timer);
}

async function login() {
  view.innerHTML = `<h1>Log in</h1><form class="stack" id="login">
    <input name="email" type="email" placeholder="Email" autocomplete="username" required>
    <input name="password" type="password" placeholder="Password" autocomplete="current-password" required>
    <button class="primary">Log in</button></form>`;
  document.getElementById("login").onsubmit = async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    try {
      session.save(await api("POST", "/auth/login", { email: form.get("email"), password: form.get("password") }, { auth: false }));
      const back = sessionStorage.getItem("gd.returnTo") || "#/";
      sessionStorage.removeItem("gd.returnTo");
      go(back); showMessage("Welcome back!", true);
    } catch (err) { showMessage(err.code === "UNAUTHORIZED" ? "Wrong email or password." : err.message); }
  };
}

async function cart() {
  if (!session.access) return requireLogin();
  const c = await api("GET", "/cart");
  const lines = c.items || c.lines || [];
  view.innerHTML = `<h1>Your cart</h1><table><tr><th>Item</th><th>Qty</th><th>Price</th><th>Status</th><th></th></tr>
    ${lines.map((l) => `<tr><td>${esc(l.name)}</td><td>${esc(l.quantity)}</td><td>${won(l.lineTotal ?? l.price * l.quantity)}</td>
      <td><span class="badge ${esc(l.status)}">${esc(l.status)}</span></td>
      <td><button data-remove="${esc(l.productId)}">Remove</button></td></tr>`).join("") || "<tr><td colspan=5>Empty.</td></tr>"}
    </table><p class="price">Total: ${won(c.total || 0)}</p>
    <button class="primary" id="checkout" ${lines.length ? "" : "disabled"}>Order everything</button>`;
  view.querySelectorAll("[data-remove]").forEach((b) => { b.onclick = async () => { await api("DELETE", `/cart/items/${b.dataset.remove}`); cart(); }; });
  document.getElementById("checkout").onclick = () => placeOrder({ fromCart: true });
}

// What the buyer paid and got back: per line and for the order (refunds in flight say so).
const PAYMENT_LABELS = { NONE: "not charged yet", DECLINED: "card declined", CHARGED: "charged",
  REFUND_PENDING: "refund in progress", PARTIALLY_REFUNDED: "partially refunded", REFUNDED: "refunded" };
const when = (iso) => (iso ? new Date(iso).toLocaleString("en-GB", { timeZone: "UTC" }) + " UTC" : "");
function refundCell(l) {
  if (l.refundStatus === "REFUNDED") return `refunded ${won(l.refundedAmount)} <small>${esc(when(l.refundedAt))}</small>`;
  if (l.refundStatus === "PENDING") return "refund in progress";
  return "";
}

// A line's button: cancel before it ships; ask to return once delivered (the seller decides on receipt).
function lineAction(o, l) {
  if (o.status !== "CONFIRMED") return "";
  if (l.deliveryStatus === "PREPARING") return `<button data-cancel-line="${esc(l.productId)}">Cancel line</button>`;
  if (l.deliveryStatus === "DELIVERED") return `<button data-return-line="${esc(l.productId)}">Ask to return</button>`;
  return "";
}

async function order(id) {
  let o; // the order as last read: the buttons below replace it, the poll reads it
  const render = () => {
    const lines = o.items || [];
    const canCancel = o.status === "PENDING" || (o.status === "CONFIRMED" && lines.every((l) => ["PREPARING", "CANCELLED", "RETURNED"].includes(l.deliveryStatus)));
    view.innerHTML = `<h1>Order ${esc(o.orderId || o.id)}</h1><p class="status ${esc(o.status)}" id="order-status">${esc(o.status)}</p>
      ${o.failureReason || o.reason ? `<p>Reason: ${esc(o.failureReason || o.reason)}</p>` : ""}
      <table id="order-lines"><tr><th>Item</th><th>Qty</th><th>Unit price</th><th>Charged</th><th>Delivery</th><th>Refund</th><th></th></tr>
      ${lines.map((l) => `<tr data-line="${esc(l.productId)}"><td>${esc(l.productName || l.productId)}</td><td>× ${esc(l.quantity)}</td>
        <td>${won(l.unitPrice ?? l.price)}</td><td>${won(l.chargedAmount || 0)}</td><td>${esc(l.deliveryStatus || "")}</td>
        <td class="refund">${refundCell(l)}</td>
        <td>${lineAction(o, l)}</td></tr>`).join("")}</table>
      <p class="money" id="order-money">Charged ${won(o.chargedAmount || 0)} · refunded ${won(o.refundedAmount || 0)}
        · <span class="badge payment-${esc(o.paymentStatus)}" id="payment-status">${esc(PAYMENT_LABELS[o.paymentStatus] || o.paymentStatus || "")}</span></p>
      ${canCancel ? '<button id="cancel-order">Cancel order</button>' : ""}`;
    view.querySelectorAll("[data-cancel-line]").forEach((b) => { b.onclick = async () => {
      try { o = await api("POST", `/orders/${encodeURIComponent(id)}/items/${b.dataset.cancelLine}/cancel`); render(); watch(); }
      catch (err) { showMessage(err.message); } }; });
    view.querySelectorAll("[data-return-line]").forEach((b) => { b.onclick = async () => {
      try { o = await api("POST", `/orders/${encodeURIComponent(id)}/items/${b.dataset.returnLine}/return`); render(); }
      catch (err) { showMessage(err.message); } }; });
    const cancel = document.getElementById("cancel-order");
    if (cancel) cancel.onclick = async () => {
      try { o = await api("POST", `/orders/${encodeURIComponent(id)}/cancel`); render(); watch(); }
      catch (err) { showMessage(err.details && err.details.retryAfterSeconds ? `${err.message} (try again in ${err.details.retryAfterSeconds} s)` : err.message); }
    };
  };
  o = await api("GET", `/orders/${encodeURIComponent(id)}`); render();
  // Poll while the order is placed or a refund is in flight.
  const busy = () => o.status === "PENDING" || o.paymentStatus === "REFUND_PENDING";
  const watch = () => {
    const timer = setInterval(async () => {
      if (!busy()) return clearInterval(timer);
      try { o = await api("GET", `/orders/${encodeURIComponent(id)}`); render(); } catch (err) { showMessage(err.message); }
    }, 500);
    timers.push(timer);
  };
  watch();
}

async function orders() {
  if (!session.access) return requireLogin();
  const page = await api("GET", "/orders?size=20");
  view.innerHTML = `<h1>Your orders</h1><table id="order-history"><tr><th>Order</th><th>Items</th><th>Status</th><th>Charged</th><th>Refunded</th></tr>
    ${page.items.map((o) => `<tr data-order="${esc(o.id)}"><td><a href="#/order/${esc(o.id)}">${esc(o.id)}</a><br><small>${esc(when(o.createdAt))}</small></td>
    <td>${(o.items || []).map((l) => `${esc(l.productName || l.productId)} × ${esc(l.quantity)}`).join("<br>")}</td>
    <td>${esc(o.status)}<br><span class="badge payment-${esc(o.paymentStatus)}">${esc(PAYMENT_LABELS[o.paymentStatus] || "")}</span></td>
    <td>${won(o.chargedAmount || 0)}</td><td class="refunded">${won(o.refundedAmount || 0)}</td></tr>`).join("") || "<tr><td colspan=5>No orders yet.</td></tr>"}</table>`;
}

// The link of the verification mail lands here (#/verify?token=...): the API says what became of it.
const VERIFY_ANSWERS = {
  VERIFICATION_LINK_EXPIRED: "This link has expired. Log in and ask for a new verification mail.",
  VERIFICATION_LINK_USED: "This link was already used: your address is verified.",
  VERIFICATION_LINK_REPLACED: "This link was replaced by a newer one. Open the link in the latest mail we sent you.",
  NOT_FOUND: "We do not know this link. Check that you copied all of it.",
};
async function verify(token) {
  view.innerHTML = "<h1>Email verification</h1><p id=\"verify-result\">Checking your link…</p>";
  const result = document.getElementById("verify-result");
  try {
    await api("GET", `/members/verify?${new URLSearchParams({ token })}`, undefined, { auth: false });
    result.textContent = "Your email address is verified. You can buy now.";
    result.dataset.outcome = "VERIFIED";
  } catch (err) {
    result.textContent = VERIFY_ANSWERS[err.code] || err.message;
    result.dataset.outcome = err.code || "ERROR";
  }
}

// ---- routing -------------------------------------------------------------------------------
function go(hash) { location.hash = hash; }

async function route() {
  stopLive(); showMessage("");
  const [, page, id] = location.hash.split("/");
  try {
    if (page === "product" && id) await product(id);
    else if (page === "login") await login();
    else if (page === "cart") await cart();
    else if (page === "orders") await orders();
    else if (page === "order" && id) await order(id);
    else if (page === "dashboard") { if (!session.access) return requireLogin(); await (id ? dashboardDrop(id) : dashboardList()); }
    else if (page && page.startsWith("verify")) await verify(new URLSearchParams(location.hash.split("?")[1] || "").get("token") || "");
    else if (page === "desk") await desk();
    else await catalogue(Object.fromEntries(new URLSearchParams(location.hash.split("?")[1] || "")));
  } catch (err) {
    if (err.status === 401) { session.clear(); return requireLogin(); }
    view.textContent = ""; showMessage(err.message);
  }
}

document.getElementById("search").onsubmit = (event) => { event.preventDefault(); go(`#/?q=${encodeURIComponent(new FormData(event.target).get("q"))}`); };
document.getElementById("nav-logout").onclick = async () => { try { await api("POST", "/auth/logout"); } catch (_) { /* already gone */ } session.clear(); go("#/"); };
window.addEventListener("hashchange", route);
renderNav(); route();

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

function renderNav() {
  document.getElementById("nav-login").hidden = !!session.access;
  document.getElementById("nav-logout").hidden = !session.access;
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

async function order(id) {
  const render = (o) => {
    view.innerHTML = `<h1>Order ${esc(o.orderId || o.id)}</h1><p class="status ${esc(o.status)}" id="order-status">${esc(o.status)}</p>
      ${o.failureReason || o.reason ? `<p>Reason: ${esc(o.failureReason || o.reason)}</p>` : ""}
      <table>${(o.items || o.lines || []).map((l) => `<tr><td>${esc(l.name || l.productId)}</td><td>× ${esc(l.quantity)}</td><td>${esc(l.deliveryStatus || "")}</td></tr>`).join("")}</table>`;
  };
  let o = await api("GET", `/orders/${encodeURIComponent(id)}`); render(o);
  const timer = setInterval(async () => {
    if (o.status !== "PENDING") return clearInterval(timer);
    try { o = await api("GET", `/orders/${encodeURIComponent(id)}`); render(o); } catch (err) { showMessage(err.message); }
  }, 500);
  timers.push(timer);
}

async function orders() {
  if (!session.access) return requireLogin();
  const page = await api("GET", "/orders?size=20");
  view.innerHTML = `<h1>Your orders</h1><table>${page.items.map((o) => `<tr><td><a href="#/order/${esc(o.orderId || o.id)}">${esc(o.orderId || o.id)}</a></td>
    <td>${esc(o.status)}</td><td>${won(o.totalPrice || 0)}</td></tr>`).join("") || "<tr><td>No orders yet.</td></tr>"}</table>`;
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

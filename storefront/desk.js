// The seller's order desk (#/desk): their order lines from GET /seller/orders, filtered and paged, with the
// next step of each line: ship, deliver (PATCH /seller/orders/{id}/items/{productId}), and accept or refuse
// a return request (PUT /seller/orders/{id}/items/{productId}/return). Uses app.js's api, esc, won, view.
"use strict";

const DESK_STATUSES = ["PREPARING", "SHIPPED", "DELIVERED", "RETURN_REQUESTED", "RETURNED", "RETURN_REFUSED", "CANCELLED"];
const DESK_LABELS = { RETURN_REQUESTED: "return requested", RETURN_REFUSED: "return refused" };
const deskFilters = { status: "", productId: "", from: "", to: "", page: 1 };

const deskLabel = (status) => DESK_LABELS[status] || status.toLowerCase();

function deskActions(line) {
  const ids = `data-order="${esc(line.orderId)}" data-product="${esc(line.productId)}"`;
  if (line.deliveryStatus === "PREPARING") return `<button class="act" data-delivery="SHIPPED" ${ids}>Mark shipped</button>`;
  if (line.deliveryStatus === "SHIPPED") return `<button class="act" data-delivery="DELIVERED" ${ids}>Mark delivered</button>`;
  if (line.deliveryStatus === "RETURN_REQUESTED") {
    return `<button class="act primary-small" data-decision="ACCEPT" ${ids}>Accept return</button>
            <button class="act" data-decision="REFUSE" ${ids}>Refuse</button>`;
  }
  return "";
}

async function desk() {
  if (!session.access) return requireLogin();
  const query = new URLSearchParams({ page: String(deskFilters.page), size: "20" });
  for (const name of ["status", "productId", "from", "to"]) if (deskFilters[name]) query.set(name, deskFilters[name]);
  let page;
  try { page = await api("GET", `/seller/orders?${query}`); }
  catch (err) {
    if (err.code === "FORBIDDEN") { view.innerHTML = "<h1>Order desk</h1><p>Only sellers have an order desk.</p>"; return; }
    throw err;
  }
  const lastPage = Math.max(1, Math.ceil(page.total / page.size));
  view.innerHTML = `<h1>Order desk</h1>
    <form id="desk-filters" class="filters">
      <label>Status <select name="status"><option value="">all</option>${DESK_STATUSES.map((s) =>
        `<option value="${s}" ${deskFilters.status === s ? "selected" : ""}>${deskLabel(s)}</option>`).join("")}</select></label>
      <label>Product <input name="productId" inputmode="numeric" size="6" value="${esc(deskFilters.productId)}"></label>
      <label>From <input name="from" type="date" value="${esc(deskFilters.from)}"></label>
      <label>To <input name="to" type="date" value="${esc(deskFilters.to)}"></label>
      <button>Show</button>
    </form>
    <table id="desk-lines"><tr><th>Ordered</th><th>Order</th><th>Product</th><th>Qty</th><th>Total</th><th>Ship to</th><th>Status</th><th></th></tr>
    ${page.items.map((l) => `<tr data-line="${esc(l.orderId)}:${esc(l.productId)}">
      <td>${esc((l.orderedAt || "").replace("T", " ").slice(0, 16))}</td>
      <td title="${esc(l.orderId)}">…${esc(l.orderId.slice(-6))}</td>
      <td>${esc(l.productName)}</td><td>${esc(l.quantity)}</td><td>${won(l.lineTotal)}</td>
      <td>${esc(l.shipTo.name)}${l.shipTo.address ? `<br><small>${esc(l.shipTo.address)}</small>` : ""}</td>
      <td><span class="badge desk ${esc(l.deliveryStatus)}">${esc(deskLabel(l.deliveryStatus))}</span></td>
      <td class="actions">${deskActions(l)}</td></tr>`).join("") || `<tr><td colspan="8">No order lines.</td></tr>`}
    </table>
    <div class="pager"><button id="desk-prev" ${page.page <= 1 ? "disabled" : ""}>‹ Newer</button>
      <span>${page.total} line(s) · page ${page.page} of ${lastPage}</span>
      <button id="desk-next" ${page.page >= lastPage ? "disabled" : ""}>Older ›</button></div>`;
  document.getElementById("desk-filters").onsubmit = (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    for (const name of ["status", "productId", "from", "to"]) deskFilters[name] = String(form.get(name) || "").trim();
    deskFilters.page = 1;
    desk().catch((err) => showMessage(err.message));
  };
  document.getElementById("desk-prev").onclick = () => { deskFilters.page -= 1; desk(); };
  document.getElementById("desk-next").onclick = () => { deskFilters.page += 1; desk(); };
  view.querySelectorAll("button.act").forEach((button) => {
    button.onclick = async () => {
      const path = `/seller/orders/${encodeURIComponent(button.dataset.order)}/items/${encodeURIComponent(button.dataset.product)}`;
      button.disabled = true;
      try {
        if (button.dataset.delivery) {
          await api("PATCH", path, { deliveryStatus: button.dataset.delivery });
          showMessage(button.dataset.delivery === "SHIPPED" ? "Marked as shipped." : "Marked as delivered.", true);
        } else {
          await api("PUT", `${path}/return`, { decision: button.dataset.decision });
          showMessage(button.dataset.decision === "ACCEPT" ? "Return accepted: the buyer is refunded and the units are back in stock."
            : "Return refused.", true);
        }
        await desk();
      } catch (err) { showMessage(err.message); button.disabled = false; }
    };
  });
}

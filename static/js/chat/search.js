// Message search: the box at the top of the room list and the results
// dialog. Results come from `message:search`; each snippet arrives as plain
// text cut into parts, and the matched parts become <mark> elements built
// with text nodes (never HTML). Choosing a result opens its room at the
// message, highlighted (controller.openMessage).

import { fill, h } from "../lib/dom.js";
import { fullDateTime, parseTime, shortDate } from "../lib/format.js";

const PAGE = 20;

export function mountSearch(store, controller, { afterOpen }) {
  const box = document.getElementById("search-form");
  const boxInput = document.getElementById("search-input");
  const dialog = document.getElementById("search-dialog");
  const form = dialog.querySelector("form");
  const queryInput = document.getElementById("search-query");
  const status = document.getElementById("search-status");
  const results = document.getElementById("search-results");
  const more = document.getElementById("search-more");
  const error = dialog.querySelector("[data-error]");

  let current = null;   // {payload, next}: the search shown, and where its next page starts
  let seq = 0;          // answers to an older search are dropped

  function showError(err) {
    error.hidden = !err;
    error.textContent = err ? err.message : "";
  }

  function payloadFromForm() {
    const payload = { query: queryInput.value, order: form.elements.order.value, limit: PAGE };
    const room = store.activeRoom();
    if (form.elements.here.checked && room) payload.room = room.slug;
    return payload;
  }

  async function run(payload, { append = false } = {}) {
    const mine = ++seq;
    showError(null);
    more.hidden = true;
    if (!append) {
      results.replaceChildren();
      status.textContent = "Searching…";
    }
    const ack = await controller.searchMessages(current?.next && append ? { ...payload, cursor: current.next } : payload);
    if (mine !== seq) return;
    if (!ack.ok) {
      status.textContent = "";
      showError(ack.error);
      return;
    }
    current = { payload, next: ack.next };
    for (const result of ack.results) results.append(resultItem(result));
    const count = results.children.length;
    status.textContent = count
      ? `${count}${ack.has_more ? "+" : ""} message${count === 1 && !ack.has_more ? "" : "s"} found`
      : "No messages found.";
    more.hidden = !ack.has_more;
  }

  function roomLabel(slug) {
    const room = store.room(slug);
    if (!room) return slug;
    return room.isDm ? `@${store.roomLabel(room)}` : `#${store.roomLabel(room)}`;
  }

  function snippet(parts) {
    return h("p", { class: "search-snippet" },
      parts.map((part) => (part.match ? h("mark", null, part.text) : part.text)));
  }

  function resultItem({ message, room, snippet: parts }) {
    const created = parseTime(message.created_at);
    const open = async () => {
      dialog.close();
      const ack = await controller.openMessage(room, message.id);
      if (ack.ok) afterOpen();
    };
    return h("li", null, h("button", {
      type: "button", class: "search-result", dataset: { id: message.id, room }, onclick: open,
    },
    h("span", { class: "search-result-meta" },
      h("span", { class: "search-result-room" }, roomLabel(room)),
      h("span", { class: "search-result-author" }, message.user.username),
      h("time", { datetime: created.toISOString(), title: fullDateTime(created) }, shortDate(created))),
    snippet(parts)));
  }

  function openDialog(query) {
    queryInput.value = query;
    fill(results);
    status.textContent = "";
    showError(null);
    more.hidden = true;
    form.elements.here.disabled = !store.activeRoom();
    if (!dialog.open) dialog.showModal();
    queryInput.focus();
    if (query.trim()) run(payloadFromForm());
  }

  box.addEventListener("submit", (event) => {
    event.preventDefault();
    openDialog(boxInput.value);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    boxInput.value = queryInput.value;
    run(payloadFromForm());
  });
  form.elements.order.addEventListener("change", () => { if (queryInput.value.trim()) run(payloadFromForm()); });
  form.elements.here.addEventListener("change", () => { if (queryInput.value.trim()) run(payloadFromForm()); });
  more.addEventListener("click", () => { if (current) run(current.payload, { append: true }); });

  return { open: (query = boxInput.value) => openDialog(query) };
}

// Parley's admin console: a live view of the server and the moderators' tools.
//
// Everything comes over the /admin Socket.IO namespace (docs/admin.md). Text
// from users (names, messages, reasons) reaches the page only as text (`h`
// from lib/dom.js sets textContent), and the page runs under a CSP with no
// inline script or style: state shows through classes, `hidden` and SVG
// attributes.

import { h, icon } from "./lib/dom.js";
import { personName } from "./lib/people.js";
import { call as callOn, connect } from "./lib/socket.js";

const body = document.body;
const me = body.dataset.username;

// One sample per stats push (every 2 s): two minutes of history in the chart.
const CHART_SAMPLES = 60;
const STATS_PERIOD_S = 2;
// The audit feed keeps this many entries on screen (the log itself keeps all).
const AUDIT_SHOWN = 200;
const SEARCH_DELAY_MS = 250;

const $ = (id) => document.getElementById(id);

function button(label, action, variant = "") {
  return h("button", { type: "button", class: `button button--small ${variant}`.trim(),
                       dataset: { action } }, label);
}

// Date and time to the second, in the reader's language and time zone.
const moment = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

function when(iso) {
  return iso ? moment.format(new Date(iso)) : "";
}

function showError(node, ack) {
  node.textContent = ack && ack.error ? ack.error.message : "";
  node.hidden = !node.textContent;
}

// -- the connection -------------------------------------------------------------

const socket = connect("/admin");
const call = (event, payload = {}) => callOn(socket, event, payload);

const status = $("console-status");
const banner = $("console-banner");

// `state` is also on <body data-connection> for the page's tests.
function setStatus(text, kind, state) {
  status.textContent = text;
  status.className = `tag tag--${kind}`;
  body.dataset.connection = state;
}

function showBanner(text, link) {
  banner.replaceChildren(h("span", null, text),
                         link ? h("a", { href: link.href }, link.text) : null);
  banner.hidden = false;
}

socket.on("connect", () => {
  setStatus("Live", "success", "live");
  banner.hidden = true;
  refreshStats();
  loadUsers();
  loadBots();
  loadWebhooks();
  loadRooms();
  loadAudit();
});

socket.on("disconnect", (reason) => {
  setStatus("Disconnected", "danger", "closed");
  if (reason === "io server disconnect") {
    // The server closed the console on purpose: rights removed or signed out.
    showBanner("The server closed the console: your admin rights were removed or you signed out. ",
               { text: "Sign in again", href: body.dataset.loginUrl });
  }
});

socket.io.on("reconnect_attempt", () => setStatus("Reconnecting…", "accent", "reconnecting"));

socket.on("connect_error", (err) => {
  setStatus("Disconnected", "danger", "closed");
  const code = err && err.data ? err.data.code : "";
  if (code === "unauthenticated") {
    showBanner("You are signed out. ", { text: "Sign in", href: body.dataset.loginUrl });
  } else if (code === "forbidden") {
    showBanner("The admin console is for admins only.");
  }
});

// -- confirmation -----------------------------------------------------------------

const dialog = $("confirm-dialog");

// Resolves to the dialog's fields when confirmed, null when cancelled.
// `reason`: false, true (optional, shown to the user) or "required" (recorded in the audit log).
function confirmAction({ title, text, confirmLabel, reason = false, duration = false }) {
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = confirmLabel;
  $("confirm-reason-field").hidden = !reason;
  $("confirm-reason").required = reason === "required";
  $("confirm-reason-hint").textContent = reason === "required"
    ? "(required, recorded in the audit log)" : "(shown to the user)";
  $("confirm-duration-field").hidden = !duration;
  $("confirm-reason").value = "";
  $("confirm-duration").value = "";
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue !== "confirm") return resolve(null);
      const minutes = $("confirm-duration").value;
      resolve({ reason: $("confirm-reason").value.trim(), minutes: minutes ? Number(minutes) : null });
    }, { once: true });
  });
}

// -- dashboard --------------------------------------------------------------------

const rateSamples = [];
let lastUsersOnline = null;
let lastRooms = null;

function showStats(stats) {
  for (const node of document.querySelectorAll("[data-stat]")) {
    const value = stats[node.dataset.stat];
    if (value !== undefined) node.textContent = value.toLocaleString();
  }
  $("workers").tBodies[0].replaceChildren(...stats.workers.map((worker) => h("tr", null,
    h("td", { class: "mono" }, worker.id),
    h("td", { dataset: { workerConnections: worker.connections } },
      worker.connections.toLocaleString()))));
  // The lists follow the dashboard: someone came or went, a room was made.
  if (lastUsersOnline !== null && lastUsersOnline !== stats.users_online) loadUsers();
  if (lastRooms !== null && lastRooms !== stats.rooms) loadRooms();
  lastUsersOnline = stats.users_online;
  lastRooms = stats.rooms;
}

function drawRate(value) {
  rateSamples.push(value);
  if (rateSamples.length > CHART_SAMPLES) rateSamples.shift();
  const peak = Math.max(1, ...rateSamples);
  const step = 300 / (CHART_SAMPLES - 1);
  const offset = (CHART_SAMPLES - rateSamples.length) * step;
  const points = rateSamples.map((sample, i) =>
    `${(offset + i * step).toFixed(1)},${(78 - (sample / peak) * 74).toFixed(1)}`);
  $("rate-chart-line").setAttribute("points", points.join(" "));
  $("rate-chart-area").setAttribute("points", `${offset.toFixed(1)},80 ${points.join(" ")} 300,80`);
  $("rate-chart").dataset.samples = String(rateSamples.length);
  $("rate-chart-peak").textContent = Math.max(0, ...rateSamples).toLocaleString();
  $("rate-chart-span").textContent = `${rateSamples.length * STATS_PERIOD_S} s`;
}

async function refreshStats() {
  const ack = await call("stats");
  if (ack.ok) showStats(ack);
}

// The chart takes one sample per push, so its time axis stays regular.
socket.on("stats", (stats) => {
  showStats(stats);
  drawRate(stats.messages_last_minute);
});

// -- users ------------------------------------------------------------------------

const userRows = $("user-table").tBodies[0];

function userRow(user) {
  const state = h("td", null, h("div", { class: "user-state" },
    h("span", { class: `presence-dot${user.online ? " presence-dot--online" : ""}`, "aria-hidden": "true" }),
    h("span", { class: "muted" }, user.online ? "online" : "offline"),
    user.is_admin ? h("span", { class: "tag tag--accent" }, "admin") : null,
    user.bot ? h("span", { class: "tag" }, "bot") : null,
    user.banned ? h("span", { class: "tag tag--danger", title: user.ban_reason || null },
                    user.banned_until ? `banned until ${when(user.banned_until)}` : "banned") : null));
  const actions = h("td", { class: "row-actions" });
  if (user.username !== me) {
    actions.append(
      button("Kick", "kick"),
      user.banned ? button("Unban", "unban") : button("Ban", "ban", "button--danger"),
      user.is_admin ? button("Demote", "demote") : button("Make admin", "promote"),
      button("Reset password", "reset-password"));
  }
  return h("tr", { dataset: { username: user.username, banned: user.banned, online: user.online } },
    h("td", { class: "user-name" }, personName(user)), state, actions);
}

let usersQuery = "";

async function loadUsers() {
  const ack = await call("users:list", { query: usersQuery });
  showError($("users-error"), ack);
  if (!ack.ok) return;
  userRows.replaceChildren(...ack.users.map(userRow));
  $("user-table-empty").hidden = ack.users.length > 0;
}

let searchTimer = null;
$("user-search").addEventListener("input", (event) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    usersQuery = event.target.value.trim();
    loadUsers();
  }, SEARCH_DELAY_MS);
});
$("user-search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  clearTimeout(searchTimer);
  usersQuery = $("user-search").value.trim();
  loadUsers();
});

const userActions = {
  kick: (user) => ({
    dialog: { title: `Kick ${user}?`, text: `${user}'s chat connections close now. They can come back at once.`,
              confirmLabel: "Kick", reason: true },
    send: (fields) => call("user:kick", { user, reason: fields.reason }),
  }),
  ban: (user) => ({
    dialog: { title: `Ban ${user}?`, text: `${user} is signed out everywhere and cannot sign in until the ban ends.`,
              confirmLabel: "Ban", reason: true, duration: true },
    send: (fields) => call("user:ban", fields.minutes
      ? { user, reason: fields.reason, minutes: fields.minutes }
      : { user, reason: fields.reason }),
  }),
  unban: (user) => ({
    dialog: { title: `Unban ${user}?`, text: `${user} may sign in again.`, confirmLabel: "Unban" },
    send: () => call("user:unban", { user }),
  }),
  promote: (user) => ({
    dialog: { title: `Make ${user} an admin?`, text: `${user} gets this console and every moderation right.`,
              confirmLabel: "Make admin" },
    send: () => call("user:promote", { user }),
  }),
  demote: (user) => ({
    dialog: { title: `Remove ${user}'s admin rights?`, text: `${user}'s open consoles close now.`,
              confirmLabel: "Remove rights" },
    send: () => call("user:demote", { user }),
  }),
  "reset-password": (user) => ({
    dialog: { title: `Reset ${user}'s password?`,
              text: `${user} is signed out everywhere. You get a temporary password to hand over; ` +
                    "they can change it on their account page.",
              confirmLabel: "Reset password" },
    send: () => call("user:reset-password", { user }),
    done: (ack) => {
      // Shown once, here only: the server keeps just its hash.
      const notice = $("users-notice");
      notice.replaceChildren(`Temporary password for ${user}: `,
        h("code", { class: "mono", id: "temporary-password" }, ack.user.temporary_password),
        ". Hand it over privately; it is not shown again.");
      notice.hidden = false;
    },
  }),
};

userRows.addEventListener("click", async (event) => {
  const target = event.target.closest("button[data-action]");
  if (!target) return;
  const user = target.closest("tr").dataset.username;
  const action = userActions[target.dataset.action](user);
  const fields = await confirmAction(action.dialog);
  if (!fields) return;
  const ack = await action.send(fields);
  showError($("users-error"), ack);
  $("users-notice").hidden = true;
  if (ack.ok) action.done?.(ack);
  if (ack.ok) loadUsers();
});

// -- rooms and messages -----------------------------------------------------------

const roomRows = $("room-table").tBodies[0];
let openRoom = null;

function roomRow(room) {
  return h("tr", { dataset: { room: room.slug, name: room.name, archived: room.archived, dm: room.dm } },
    h("td", null,
      h("span", { class: "room-name" }, room.name), " ",
      h("span", { class: "muted mono" }, room.slug),
      room.private && !room.dm ? h("span", { class: "tag" }, "private") : null,
      room.dm ? h("span", { class: "tag" }, "direct") : null,
      room.archived ? h("span", { class: "tag tag--danger" }, icon("archive", "icon--small"), "archived") : null),
    h("td", null, room.member_count.toLocaleString()),
    h("td", null, room.message_count.toLocaleString()),
    h("td", { class: "row-actions" },
      button("Messages", "messages"),
      room.archived ? button("Reopen", "reopen") : button("Archive", "archive")));
}

async function loadRooms() {
  const ack = await call("rooms:list");
  showError($("moderation-error"), ack);
  if (!ack.ok) return;
  roomRows.replaceChildren(...ack.rooms.map(roomRow));
  const select = $("announce-room");
  const chosen = select.value;
  select.replaceChildren(h("option", { value: "" }, "Every room"),
    ...ack.rooms.filter((room) => !room.dm).map((room) =>
      h("option", { value: room.slug }, `${room.name} (${room.slug})`)));
  select.value = chosen;
  if (select.value !== chosen) select.value = "";
}

$("room-refresh").addEventListener("click", () => loadRooms());

roomRows.addEventListener("click", async (event) => {
  const target = event.target.closest("button[data-action]");
  if (!target) return;
  const row = target.closest("tr");
  const room = row.dataset.room;
  if (target.dataset.action === "messages") {
    if (row.dataset.dm === "true") {
      // Direct messages are private: reading one is an audited compliance action.
      const fields = await confirmAction({
        title: `Read the direct messages of ${row.dataset.name}?`,
        text: "Direct messages are private. Read one only for a report or a compliance request: "
          + "your name, the conversation and your reason are recorded in the audit log for every page you open.",
        confirmLabel: "Read (audited)", reason: "required",
      });
      if (!fields || !fields.reason) return;
      showMessages(room, row.dataset.name, null, fields.reason);
      return;
    }
    showMessages(room, row.dataset.name);
    return;
  }
  const archive = target.dataset.action === "archive";
  const fields = await confirmAction(archive
    ? { title: `Archive ${row.dataset.name}?`, text: "Members can still read it, but nobody can post or edit.",
        confirmLabel: "Archive" }
    : { title: `Reopen ${row.dataset.name}?`, text: "Members can post in it again.", confirmLabel: "Reopen" });
  if (!fields) return;
  const ack = await call("room:archive", { room, archived: archive });
  showError($("moderation-error"), ack);
  if (ack.ok) loadRooms();
});

const messageList = $("message-list");

function messageItem(message) {
  return h("li", { class: "message-row", dataset: { messageId: message.id } },
    h("div", { class: "message-meta" },
      personName(message.user, "message-author"),
      h("time", { class: "muted", datetime: message.created_at }, when(message.created_at)),
      message.edited_at ? h("span", { class: "muted" }, "(edited)") : null),
    h("p", { class: "message-body" }, message.body),
    button("Delete", "delete", "button--danger"));
}

// The reason of the open direct message's compliance read (null for other rooms):
// every older page asks with it again, and is audited again.
let openReason = null;

async function showMessages(room, name, before = null, reason = null) {
  const payload = { room, limit: 50 };
  if (before) payload.before = before;
  if (reason) payload.reason = reason;
  const ack = await call("messages:recent", payload);
  showError($("moderation-error"), ack);
  if (!ack.ok) return;
  openRoom = room;
  openReason = reason;
  $("room-messages").hidden = false;
  $("room-messages-name").textContent = name;
  const items = ack.messages.map(messageItem);
  if (before) messageList.prepend(...items);
  else messageList.replaceChildren(...items);
  $("room-messages-older").hidden = !ack.has_more;
  $("message-list-empty").hidden = messageList.children.length > 0;
}

$("room-messages-older").addEventListener("click", () => {
  const first = messageList.querySelector("[data-message-id]");
  if (first) {
    showMessages(openRoom, $("room-messages-name").textContent, Number(first.dataset.messageId), openReason);
  }
});

$("room-messages-close").addEventListener("click", () => {
  openRoom = null;
  openReason = null;
  $("room-messages").hidden = true;
  messageList.replaceChildren();
});

messageList.addEventListener("click", async (event) => {
  const target = event.target.closest("button[data-action='delete']");
  if (!target) return;
  const item = target.closest("li");
  const author = item.querySelector(".message-author").textContent;
  const excerpt = item.querySelector(".message-body").textContent.slice(0, 200);
  const fields = await confirmAction({
    title: "Delete this message?",
    text: `By ${author}: “${excerpt}”. It disappears for every member.`,
    confirmLabel: "Delete",
  });
  if (!fields) return;
  const ack = await call("message:delete", { id: Number(item.dataset.messageId) });
  showError($("moderation-error"), ack);
  // not_found: someone deleted it first; either way it is gone.
  if (ack.ok || (ack.error && ack.error.code === "not_found")) item.remove();
  $("message-list-empty").hidden = messageList.children.length > 0;
});

// -- announcements ----------------------------------------------------------------

$("announce-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("announce-body").value;
  const room = $("announce-room").value;
  const audience = room ? `the people in ${room}` : "everyone connected";
  const fields = await confirmAction({ title: "Send this announcement?", text: `It reaches ${audience} now.`,
                                       confirmLabel: "Send" });
  if (!fields) return;
  const minutes = $("announce-minutes").value;
  const ack = await call("announce", { body: text, ...(room ? { room } : {}),
                                       ...(minutes ? { minutes: Number(minutes) } : {}) });
  showError($("announce-error"), ack);
  if (!ack.ok) return;
  $("announce-body").value = "";
  $("announce-minutes").value = "";
  $("announce-sent").textContent = `Sent to ${room || "every room"} at ${when(ack.announcement.created_at)}.`;
});

// -- invite codes -------------------------------------------------------------------

$("invite-create").addEventListener("click", async () => {
  const ack = await call("invite:create");
  showError($("invite-error"), ack);
  $("invite-made").hidden = !ack.ok;
  if (!ack.ok) return;
  $("invite-code").textContent = ack.invite.code;
  $("invite-expires").textContent = when(ack.invite.expires_at);
  $("invite-expires").setAttribute("datetime", ack.invite.expires_at);
});

// -- the audit feed ---------------------------------------------------------------

const auditFeed = $("audit-feed");

function auditItem(entry) {
  return h("li", { class: "audit-entry", dataset: { auditId: entry.id, action: entry.action } },
    h("time", { class: "muted", datetime: entry.at }, when(entry.at)),
    h("span", { class: "audit-actor" }, entry.actor),
    h("span", { class: "tag" }, entry.action),
    h("span", { class: "audit-target" }, entry.target),
    h("span", { class: "audit-detail" }, entry.detail));
}

function addAudit(entry) {
  if (auditFeed.querySelector(`[data-audit-id="${Number(entry.id)}"]`)) return;
  auditFeed.prepend(auditItem(entry));
  while (auditFeed.children.length > AUDIT_SHOWN) auditFeed.lastElementChild.remove();
  $("audit-empty").hidden = true;
}

async function loadAudit() {
  const ack = await call("audit:list", { limit: 100 });
  if (!ack.ok) return;
  auditFeed.replaceChildren(...ack.entries.slice().reverse().map(auditItem));
  $("audit-empty").hidden = ack.entries.length > 0;
}

socket.on("audit", (entry) => {
  addAudit(entry);
  // What the entry changed shows elsewhere on the page too.
  if (entry.action.startsWith("user:")) loadUsers();
  if (entry.action.startsWith("room:")) loadRooms();
  // A webhook added, changed or disabled (by the server, after failures).
  if (entry.action.startsWith("webhook:")) loadWebhooks();
});

// -- bots ---------------------------------------------------------------------------

const botRows = $("bot-table").tBodies[0];

function botRow(bot) {
  return h("tr", { dataset: { bot: bot.username } },
    h("td", null, h("span", { class: "user-name" }, bot.username), " ",
      h("span", { class: "tag" }, "bot")),
    h("td", { class: "muted" }, bot.key_active ? `since ${when(bot.key_created_at)}` : "revoked"),
    h("td", { class: "row-actions" }, button("Rotate key", "rotate"),
      bot.key_active ? button("Revoke", "revoke", "button--danger") : null));
}

async function loadBots() {
  const ack = await call("bots:list");
  showError($("bots-error"), ack);
  if (!ack.ok) return;
  botRows.replaceChildren(...ack.bots.map(botRow));
  $("bot-table-empty").hidden = ack.bots.length > 0;
}

// The key is in the ack only: shown here once, never stored by the page.
function showKey(ack) {
  $("bot-key-name").textContent = ack.bot.username;
  $("bot-key-value").textContent = ack.key;
  $("bot-key").hidden = false;
}

$("bot-create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const ack = await call("bot:create", { name: $("bot-name").value.trim() });
  showError($("bots-error"), ack);
  if (!ack.ok) return;
  $("bot-name").value = "";
  showKey(ack);
  loadBots();
});

botRows.addEventListener("click", async (event) => {
  const target = event.target.closest("button[data-action]");
  if (!target) return;
  const bot = target.closest("tr").dataset.bot;
  const rotate = target.dataset.action === "rotate";
  const fields = await confirmAction(rotate
    ? { title: `Rotate ${bot}'s key?`, text: "The old key and every token from it stop working.",
        confirmLabel: "Rotate" }
    : { title: `Revoke ${bot}'s key?`, text: "The bot can no longer sign in; its tokens stop working.",
        confirmLabel: "Revoke" });
  if (!fields) return;
  const ack = await call(rotate ? "bot:rotate" : "bot:revoke", { bot });
  showError($("bots-error"), ack);
  if (!ack.ok) return;
  $("bot-key").hidden = true;
  if (rotate) showKey(ack);
  loadBots();
});

// -- webhooks -------------------------------------------------------------------------

const webhookRows = $("webhook-table").tBodies[0];
const deliveryRows = $("delivery-table").tBodies[0];
// The webhook whose deliveries are shown (null: none).
let openWebhook = null;

function webhookRow(hook) {
  const state = hook.active
    ? h("span", { class: "tag tag--success" }, "active")
    : h("span", { class: "tag tag--danger", title: hook.disabled_reason || "" }, "disabled");
  return h("tr", { dataset: { webhook: hook.id, active: hook.active } },
    h("td", { class: "webhook-url mono" }, hook.url),
    h("td", null, hook.rooms ? hook.rooms.join(", ") : "every public room"),
    h("td", null, hook.events.length ? hook.events.join(", ") : "every event"),
    h("td", null, state, hook.disabled_reason
      ? h("p", { class: "muted delivery-error" }, hook.disabled_reason) : null),
    h("td", { dataset: { pending: hook.pending } }, hook.pending.toLocaleString()),
    h("td", { class: "row-actions" },
      button("Deliveries", "deliveries"),
      button(hook.active ? "Disable" : "Enable", hook.active ? "disable" : "enable"),
      button("Delete", "delete", "button--danger")));
}

async function loadWebhooks() {
  const ack = await call("webhooks:list");
  showError($("webhooks-error"), ack);
  if (!ack.ok) return;
  webhookRows.replaceChildren(...ack.webhooks.map(webhookRow));
  $("webhook-table-empty").hidden = ack.webhooks.length > 0;
}

function deliveryRow(delivery) {
  const finished = delivery.status !== "pending";
  const statusTag = { delivered: "tag--success", failed: "tag--danger", pending: "tag--accent" };
  return h("tr", { dataset: { delivery: delivery.id, status: delivery.status } },
    h("td", { class: "mono" }, delivery.id),
    h("td", null, h("code", null, delivery.event), ` in ${delivery.room} at ${delivery.cursor}`),
    h("td", null, h("span", { class: `tag ${statusTag[delivery.status] || ""}`.trim() },
                    delivery.status),
      delivery.error ? h("p", { class: "muted delivery-error" }, delivery.error) : null),
    h("td", null, delivery.response_code === null ? "–" : String(delivery.response_code)),
    h("td", null, delivery.latency_ms === null ? "–" : `${delivery.latency_ms} ms`),
    h("td", null, String(delivery.attempts)),
    h("td", null, when(delivery.last_attempt_at)),
    h("td", { class: "row-actions" }, finished ? button("Redeliver", "redeliver") : null));
}

async function showDeliveries(id) {
  const ack = await call("webhook:deliveries", { id, limit: 50 });
  showError($("webhooks-error"), ack);
  if (!ack.ok) return;
  openWebhook = id;
  $("webhook-deliveries").hidden = false;
  $("webhook-deliveries-id").textContent = String(id);
  deliveryRows.replaceChildren(...ack.deliveries.map(deliveryRow));
  $("delivery-table-empty").hidden = ack.deliveries.length > 0;
}

function chosenEvents() {
  return [...$("webhook-create-form").querySelectorAll("input[name='events']:checked")]
    .map((box) => box.value);
}

$("webhook-create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const rooms = $("webhook-rooms").value.split(",").map((slug) => slug.trim()).filter(Boolean);
  const ack = await call("webhook:create", {
    url: $("webhook-url").value.trim(), rooms: rooms.length ? rooms : null,
    events: chosenEvents(), active: $("webhook-active").checked,
  });
  showError($("webhooks-error"), ack);
  if (!ack.ok) return;
  $("webhook-create-form").reset();
  $("webhook-secret-id").textContent = String(ack.webhook.id);
  $("webhook-secret-value").textContent = ack.secret;
  $("webhook-secret").hidden = false;
  loadWebhooks();
});

webhookRows.addEventListener("click", async (event) => {
  const target = event.target.closest("button[data-action]");
  if (!target) return;
  const id = Number(target.closest("tr").dataset.webhook);
  const action = target.dataset.action;
  if (action === "deliveries") {
    showDeliveries(id);
    return;
  }
  let ack;
  if (action === "delete") {
    const fields = await confirmAction({
      title: `Delete webhook ${id}?`,
      text: "Its pending deliveries are dropped and nothing more is sent to it.",
      confirmLabel: "Delete" });
    if (!fields) return;
    ack = await call("webhook:delete", { id });
    if (ack.ok && openWebhook === id) $("webhook-deliveries-close").click();
  } else {
    ack = await call("webhook:update", { id, active: action === "enable" });
  }
  showError($("webhooks-error"), ack);
  if (ack.ok) loadWebhooks();
});

deliveryRows.addEventListener("click", async (event) => {
  const target = event.target.closest("button[data-action='redeliver']");
  if (!target) return;
  const ack = await call("webhook:redeliver", { delivery: target.closest("tr").dataset.delivery });
  showError($("webhooks-error"), ack);
  if (ack.ok) showDeliveries(openWebhook);
});

$("webhook-deliveries-refresh").addEventListener("click", () => {
  if (openWebhook !== null) showDeliveries(openWebhook);
  loadWebhooks();  // the pending counts move with the deliveries
});

$("webhook-deliveries-close").addEventListener("click", () => {
  openWebhook = null;
  $("webhook-deliveries").hidden = true;
  deliveryRows.replaceChildren();
});

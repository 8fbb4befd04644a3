// The group chat page: reads who is signed in from <body data-*>, connects
// to /public, and mounts the views on the store.

import { fill, hydrateAvatars } from "../lib/dom.js";
import { personName } from "../lib/people.js";
import { connect } from "../lib/socket.js";
import { mountComposer } from "./composer.js";
import { ChatController } from "./controller.js";
import { mountDialogs } from "./dialogs.js";
import { mountHeader } from "./header.js";
import { mountMembers } from "./members.js";
import { mountSearch } from "./search.js";
import { mountMentionCompleter } from "./mentions.js";
import { mountNotifications } from "./notifications.js";
import { mountSidebar, roomHref } from "./sidebar.js";
import { ChatStore, oneLine } from "./store.js";
import { mountTimeline } from "./timeline.js";

const LAST_ROOM_KEY = "parley:last-room";
const body = document.body;
const shell = document.getElementById("shell");
const composerField = document.getElementById("composer-input");

const store = new ChatStore({
  id: Number(body.dataset.userId),
  username: body.dataset.username,
  displayName: body.dataset.displayName || null,
  isAdmin: body.dataset.isAdmin === "true",
});
store.ready = false;

// Presence arrives as `presence:batch`, one event per room and window, not
// one per member (docs/protocol.md, Presence batches).
const socket = connect("/public", { auth: { presence: "batched" } });
const controller = new ChatController(store, socket, {
  loginUrl: body.dataset.loginUrl,
  onFirstSync: () => {
    store.ready = true;
    store.notify("ready");
    openFromAddress({ fallback: true });
  },
});

// -- panels: the room list and the member list fold into drawers on small screens --

const phone = window.matchMedia("(max-width: 760px)");
const narrow = window.matchMedia("(max-width: 1100px)");
const menuButton = document.querySelector("[data-action=toggle-sidebar]");
const membersButton = document.getElementById("members-button");

function setPanel(name, open) {
  const opener = name === "sidebar" ? menuButton : membersButton;
  if (name === "members" && !narrow.matches) {
    // Wide screens show the member list as a column that can be hidden.
    shell.classList.toggle("members-collapsed", !open);
  } else {
    shell.classList.toggle(`show-${name}`, open);
  }
  opener.setAttribute("aria-expanded", String(open));
  document.getElementById("scrim").hidden = !shell.matches(".show-sidebar, .show-members");
  if (open && (name === "sidebar" ? phone.matches : narrow.matches)) {
    const panel = document.getElementById(name === "sidebar" ? "sidebar" : "members");
    (panel.querySelector("[aria-current=page]") || panel.querySelector("a, button:not([disabled])"))?.focus();
  }
}

function panelOpen(name) {
  if (name === "members" && !narrow.matches) return !shell.classList.contains("members-collapsed");
  return shell.classList.contains(`show-${name}`);
}

function closeDrawers({ restoreFocus = true } = {}) {
  const wasOpen = shell.classList.contains("show-sidebar") ? menuButton
    : shell.classList.contains("show-members") ? membersButton : null;
  shell.classList.remove("show-sidebar", "show-members");
  menuButton.setAttribute("aria-expanded", "false");
  if (narrow.matches) membersButton.setAttribute("aria-expanded", "false");
  document.getElementById("scrim").hidden = true;
  if (wasOpen && restoreFocus) wasOpen.focus();
}

function syncPanelState() {
  closeDrawers({ restoreFocus: false });
  membersButton.setAttribute("aria-expanded", String(panelOpen("members")));
}
narrow.addEventListener("change", syncPanelState);
phone.addEventListener("change", syncPanelState);

function focusComposer() {
  if (!composerField.disabled) composerField.focus();
}

/** After entering a room from a dialog or the list: close drawers, write. */
function afterEnter() {
  closeDrawers({ restoreFocus: false });
  focusComposer();
}

// -- the room in the address: #room=<slug> --

function slugFromAddress() {
  const match = window.location.hash.match(/^#room=(.+)$/);
  return match ? decodeURIComponent(match[1]) : null;
}

async function openFromAddress({ fallback = false } = {}) {
  const wanted = slugFromAddress();
  if (wanted && controller.selectRoom(wanted)) return;
  if (wanted && store.room(wanted) && !store.room(wanted).member) {
    // A link to a public room the reader has not joined yet: join it.
    const ack = await controller.enter(wanted);
    if (ack.ok) return;
  }
  if (!fallback) return;
  const remembered = localStorage.getItem(LAST_ROOM_KEY);
  if (remembered && controller.selectRoom(remembered)) return;
  const first = sidebar.order()[0];
  if (first) controller.selectRoom(first);
}

window.addEventListener("hashchange", () => openFromAddress());

store.addEventListener("change", ({ detail }) => {
  if (detail.what !== "active") return;
  const slug = store.activeSlug;
  if (slug) {
    localStorage.setItem(LAST_ROOM_KEY, slug);
    if (slugFromAddress() !== slug) history.replaceState(null, "", roomHref(slug));
  } else if (store.ready) {
    // The open room went away (left, or no longer visible): open another.
    history.replaceState(null, "", window.location.pathname);
    openFromAddress({ fallback: true });
  }
});

// The reader's own name in the sidebar follows a change of display name.
store.addEventListener("change", ({ detail }) => {
  if (detail.what !== "people") return;
  fill(document.getElementById("me-name"), personName(store.person({ id: store.me.id, username: store.me.username }), "person"));
});

// "Today" becomes "Yesterday" at midnight: relabel the day separators.
let today = new Date().toDateString();
setInterval(() => {
  if (new Date().toDateString() !== today) {
    today = new Date().toDateString();
    timeline.render();
  }
}, 60_000);

// -- mount --

hydrateAvatars();
const timeline = mountTimeline(store, controller, {
  confirmDelete: (message) => dialogs.confirmDelete(message),
  focusComposer,
  replyTo: (slug, message) => {
    store.setReplyTo(slug, { id: message.id, author: message.user, excerpt: oneLine(message.body) });
    focusComposer();
  },
  // Mounted below; called only later, on a click.
  notify: (text) => dialogs.toast(text),
});
const sidebar = mountSidebar(store);
const dialogs = mountDialogs(store, controller, { afterEnter });
mountHeader(store, controller);
controller.onNotice = (text) => dialogs.toast(text);
mountMembers(store, { openDm: (username) => dialogs.openDm(username) });
mountComposer(store, controller, timeline);
// A result opens its room at the message, which takes the focus (not the composer).
mountSearch(store, controller, { afterOpen: () => closeDrawers({ restoreFocus: false }) });
mountMentionCompleter(store);
mountNotifications(store, controller, socket);
controller.start();

// Buttons anywhere on the page say what they do with data-action.
const actions = {
  "browse-rooms": () => dialogs.browseRooms(),
  "create-room": () => dialogs.createRoom(),
  "open-dm": () => dialogs.openDmDialog(),
  invite: () => dialogs.invite(),
  "leave-room": () => dialogs.confirmLeave(),
  "room-settings": () => dialogs.roomSettings(),
  "toggle-sidebar": () => setPanel("sidebar", !panelOpen("sidebar")),
  "toggle-members": () => setPanel("members", !panelOpen("members")),
  "close-panels": () => closeDrawers(),
  // Without changing the address (it names the open room).
  "skip-to-composer": () => focusComposer(),
};
document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-action]");
  if (target && actions[target.dataset.action]) {
    event.preventDefault();
    actions[target.dataset.action]();
    return;
  }
  // Choosing a room in the drawer closes it and puts the cursor in the message box.
  const roomLink = event.target.closest(".nav-item");
  if (roomLink) {
    if (roomLink.dataset.slug === store.activeSlug) event.preventDefault();
    closeDrawers({ restoreFocus: false });
    queueMicrotask(focusComposer);
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && shell.matches(".show-sidebar, .show-members") && !document.querySelector("dialog[open]")) {
    closeDrawers();
    return;
  }
  // Alt+Up / Alt+Down: the previous or next room in the list, as in Slack.
  if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown") && !document.querySelector("dialog[open]")) {
    const order = sidebar.order();
    if (!order.length) return;
    event.preventDefault();
    const index = order.indexOf(store.activeSlug);
    const step = event.key === "ArrowUp" ? -1 : 1;
    const next = order[(index + step + order.length) % order.length];
    controller.selectRoom(next);
    focusComposer();
  }
});

// Leaving the page (sign-out, reload) closes the connection on purpose: no
// "reconnecting" flash, and the server sees the goodbye at once. A page
// restored from the back-forward cache connects again and catches up.
window.addEventListener("pagehide", () => socket.disconnect());
window.addEventListener("pageshow", (event) => {
  if (event.persisted) socket.connect();
});

// On a narrow screen the member list starts closed.
syncPanelState();

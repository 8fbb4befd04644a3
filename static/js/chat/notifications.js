// Notifications: the open room's notification menu (all messages, mentions
// of me, nothing), the opt-in to browser notifications, and the
// notifications themselves while the page is hidden.
//
// The server pushes `mention` to every tab of a mentioned member unless
// their level for the room is "none"; with "all", any live message by
// someone else notifies too. Browser permission is asked only from a click
// (browsers refuse a request that no gesture started).

import { plainText } from "../lib/markdown.js";
import { mentionsMe } from "./mentions.js";

/** The longest body a notification shows; the rest is in the room. */
const PREVIEW_LENGTH = 160;
/** Messages already notified (a mention arrives as `message` and `mention`): the newest few. */
const REMEMBERED = 200;

const LEVEL_LABELS = { all: "All messages", mentions: "Mentions", none: "Muted" };

function supported() {
  return typeof window.Notification === "function";
}

export function mountNotifications(store, controller, socket) {
  const wrapper = document.getElementById("notify-menu");
  const button = document.getElementById("notify-button");
  const label = document.getElementById("notify-label");
  const menu = document.getElementById("notify-options");
  const browserState = document.getElementById("notify-browser-state");
  const enable = document.getElementById("notify-enable");
  const notified = new Set();

  function items() {
    return [...menu.querySelectorAll("[role^=menuitem]")].filter((item) => !item.hidden);
  }

  function renderMenu() {
    const room = store.activeRoom();
    wrapper.hidden = !room;
    if (!room) return;
    label.textContent = LEVEL_LABELS[room.notify] || "Notifications";
    button.setAttribute("aria-label", `Notifications for this room: ${LEVEL_LABELS[room.notify] || room.notify}`);
    for (const item of menu.querySelectorAll("[data-level]")) {
      item.setAttribute("aria-checked", String(item.dataset.level === room.notify));
    }
    const permission = supported() ? Notification.permission : "unsupported";
    enable.hidden = permission !== "default";
    browserState.textContent = {
      granted: "Browser notifications are on while this page is in the background.",
      denied: "Browser notifications are blocked for this site in the browser's settings.",
      unsupported: "This browser cannot show notifications.",
      default: "Browser notifications are off.",
    }[permission];
  }

  function openMenu() {
    renderMenu();
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    (menu.querySelector("[aria-checked=true]") || items()[0])?.focus();
  }

  function closeMenu({ restoreFocus = true } = {}) {
    if (menu.hidden) return;
    menu.hidden = true;
    button.setAttribute("aria-expanded", "false");
    if (restoreFocus) button.focus();
  }

  button.addEventListener("click", () => (menu.hidden ? openMenu() : closeMenu()));
  menu.addEventListener("click", async (event) => {
    const item = event.target.closest("[data-level]");
    if (item) {
      const room = store.activeRoom();
      closeMenu();
      if (room) await controller.setNotifyLevel(room.slug, item.dataset.level);
    } else if (event.target === enable && supported()) {
      await Notification.requestPermission();
      renderMenu();
      enable.hidden ? items()[0]?.focus() : enable.focus();
    }
  });
  menu.addEventListener("keydown", (event) => {
    const list = items();
    const index = list.indexOf(document.activeElement);
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      closeMenu();
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      list[(index + step + list.length) % list.length]?.focus();
    } else if (event.key === "Tab") {
      closeMenu({ restoreFocus: false });
    }
  });
  document.addEventListener("click", (event) => {
    if (!wrapper.contains(event.target)) closeMenu({ restoreFocus: false });
  });

  // -- the notifications --

  function show(slug, message) {
    if (!supported() || Notification.permission !== "granted") return;
    if (document.visibilityState !== "hidden" || notified.has(message.id)) return;
    const room = store.room(slug);
    if (!room?.member) return;
    notified.add(message.id);
    if (notified.size > REMEMBERED) notified.delete(notified.values().next().value);
    const where = room.isDm ? message.user.username : `${message.user.username} in #${store.roomLabel(room)}`;
    // A notification shows text: the body without its formatting markers.
    const text = plainText(message.body);
    const body = text.length > PREVIEW_LENGTH ? `${text.slice(0, PREVIEW_LENGTH)}…` : text;
    const notification = new Notification(where, { body, tag: `parley-message-${message.id}` });
    notification.onclick = () => {
      window.focus();
      controller.selectRoom(slug);
      notification.close();
    };
  }

  socket.on("mention", ({ room, message }) => show(room, message));
  socket.on("message", (message) => {
    const room = store.room(message.room);
    if (!room || room.notify !== "all" || message.user.id === store.me.id) return;
    // A mention is notified by its own push (which the level "all" keeps).
    if (mentionsMe(message, store.me.id) || message.edited_at) return;
    show(message.room, message);
  });

  store.addEventListener("change", ({ detail }) => {
    if (detail.what === "active" || detail.what === "rooms") renderMenu();
    if (detail.what === "active") closeMenu({ restoreFocus: false });
  });
  renderMenu();
}

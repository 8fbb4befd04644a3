// The room list: the reader's rooms and direct messages with unread counts,
// and the connection state under their name.

import { avatar, coalesced, fill, h, icon } from "../lib/dom.js";

export function roomHref(slug) {
  return `#room=${encodeURIComponent(slug)}`;
}

export function mountSidebar(store) {
  const roomList = document.getElementById("room-list");
  const dmList = document.getElementById("dm-list");
  const roomsEmpty = document.getElementById("room-list-empty");
  const dmsEmpty = document.getElementById("dm-list-empty");
  const status = document.getElementById("me-status");

  const schedule = coalesced(render);

  /** Member rooms in sidebar order: rooms by name, then direct messages by the other's name. */
  function ordered() {
    const byLabel = (a, b) => store.roomLabel(a).localeCompare(store.roomLabel(b), undefined, { sensitivity: "base" });
    const mine = store.memberRooms();
    return {
      rooms: mine.filter((room) => !room.isDm).sort(byLabel),
      dms: mine.filter((room) => room.isDm).sort(byLabel),
    };
  }

  function render() {
    const { rooms, dms } = ordered();
    const focused = document.activeElement?.closest?.(".nav-item")?.dataset.slug;
    fill(roomList, rooms.map(item));
    fill(dmList, dms.map(item));
    roomsEmpty.hidden = !store.ready || rooms.length > 0;
    dmsEmpty.hidden = !store.ready || dms.length > 0;
    if (focused) document.querySelector(`.nav-item[data-slug="${CSS.escape(focused)}"]`)?.focus();
    // "(N)": the unread mentions of the reader when there are any (what
    // calls for them), else the unread messages.
    const count = store.totalMentions() || store.totalUnread();
    const active = store.activeRoom();
    const title = active ? `${active.isDm ? "@" : "#"}${store.roomLabel(active)} · Parley` : "Parley";
    document.title = count ? `(${count}) ${title}` : title;
  }

  function item(room) {
    const label = store.roomLabel(room);
    const active = room.slug === store.activeSlug;
    const classes = ["nav-item"];
    if (room.unread && !active) classes.push("nav-item--unread");
    if (room.archived) classes.push("nav-item--archived");
    let marker;
    if (room.isDm) {
      const peer = store.dmPeer(room);
      const online = peer?.id != null && room.online.has(peer.id);
      marker = avatar(peer?.username || label, { small: true, online });
    } else {
      marker = icon(room.archived ? "archive" : room.info.private ? "lock" : "hash");
    }
    const notes = [];
    if (room.info.private && !room.isDm) notes.push("private");
    if (room.archived) notes.push("archived");
    return h("li", null, h("a", {
      class: classes.join(" "),
      href: roomHref(room.slug),
      dataset: { slug: room.slug },
      "aria-current": active ? "page" : null,
    },
    marker,
    h("span", { class: "nav-name" }, label),
    notes.length ? h("span", { class: "visually-hidden" }, ` (${notes.join(", ")})`) : null,
    room.mentionsUnread && !active
      ? h("span", { class: "mention-badge", title: "Mentions of you" },
        `@${room.mentionsUnread > 99 ? "99+" : room.mentionsUnread}`,
        h("span", { class: "visually-hidden" }, room.mentionsUnread === 1 ? " mention" : " mentions"))
      : null,
    room.unread && !active
      ? h("span", { class: "badge" }, room.unread > 99 ? "99+" : String(room.unread),
        h("span", { class: "visually-hidden" }, " unread"))
      : null));
  }

  function renderStatus() {
    const { state } = store.connection;
    const text = { online: "Online", syncing: "Catching up…", connecting: "Connecting…",
      reconnecting: "Reconnecting…", failed: "Disconnected" }[state] || state;
    status.textContent = text;
    status.classList.toggle("me-status--online", state === "online");
  }

  store.addEventListener("change", ({ detail }) => {
    if (["rooms", "active", "ready"].includes(detail.what)) schedule();
    else if (detail.what === "connection") renderStatus();
  });
  renderStatus();

  return {
    /** The member rooms in the order shown, for Alt+Up / Alt+Down. */
    order: () => {
      const { rooms, dms } = ordered();
      return [...rooms, ...dms].map((room) => room.slug);
    },
  };
}

// The page's dialogs: create a room, browse public rooms, message someone,
// invite to a room, and confirm a deletion or leaving. Each is a <dialog>
// in templates/chat/index.html opened with showModal(): focus stays inside
// and Esc closes it.

import { fill, h, icon } from "../lib/dom.js";

export function mountDialogs(store, controller, { afterEnter }) {
  const byId = (id) => document.getElementById(id);

  function open(dialog) {
    const opener = document.activeElement;
    const form = dialog.querySelector("form");
    form?.reset();
    showError(dialog, null);
    dialog.showModal();
    dialog.addEventListener("close", () => {
      // Back to where the reader was, unless the action moved them on (into a room's message box).
      const moved = document.activeElement && document.activeElement !== document.body
        && document.activeElement !== opener && !dialog.contains(document.activeElement);
      if (!moved && opener && document.contains(opener) && !opener.closest("[hidden]")) opener.focus();
    }, { once: true });
    dialog.querySelector("input:not([type=hidden]):not([type=radio])")?.focus();
  }

  function showError(dialog, error) {
    const slot = dialog.querySelector("[data-error]");
    slot.hidden = !error;
    slot.textContent = error ? error.message : "";
  }

  /** Run `action` (resolving to an ack) from a dialog; close it when ok, show the error when not. */
  async function submitFrom(dialog, action) {
    const buttons = dialog.querySelectorAll("button");
    buttons.forEach((button) => { button.disabled = true; });
    showError(dialog, null);
    try {
      const ack = await action();
      if (ack.ok) {
        dialog.close();
        return ack;
      }
      showError(dialog, ack.error);
      return ack;
    } finally {
      buttons.forEach((button) => { button.disabled = false; });
    }
  }

  for (const dialog of document.querySelectorAll("dialog")) {
    dialog.addEventListener("click", (event) => {
      if (event.target.closest("[data-close]")) dialog.close();
      // A click on the backdrop (the dialog element itself, outside its box) closes it.
      else if (event.target === dialog) dialog.close();
    });
  }

  // -- create a room --
  const createDialog = byId("create-room-dialog");
  createDialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const name = form.elements.name.value.trim();
    const topic = form.elements.topic.value.trim();
    const isPrivate = form.elements.visibility.value === "private";
    const ack = await submitFrom(createDialog, () => controller.createRoom(name, topic, isPrivate));
    if (ack.ok) afterEnter();
  });

  // -- browse rooms --
  const browseDialog = byId("browse-dialog");
  const browseList = byId("browse-list");
  const browseFilter = byId("browse-filter");

  function renderBrowse() {
    const query = browseFilter.value.trim().toLowerCase();
    const rooms = [...store.rooms.values()]
      .filter((room) => !room.isDm && !room.info.private)
      .filter((room) => !query || room.info.name.toLowerCase().includes(query)
        || (room.info.topic || "").toLowerCase().includes(query))
      .sort((a, b) => a.info.name.localeCompare(b.info.name, undefined, { sensitivity: "base" }));
    if (!rooms.length) {
      browseList.replaceChildren(h("li", { class: "browse-empty" },
        query ? "No room matches that." : "There are no public rooms yet. Create the first one!"));
      return;
    }
    fill(browseList, rooms.map((room) => {
      const members = `${room.info.member_count} member${room.info.member_count === 1 ? "" : "s"}`;
      const action = room.member
        ? h("button", { type: "button", class: "button button--small", onclick: () => enter(room.slug) }, "Open")
        : h("button", {
          type: "button", class: "button button--primary button--small",
          "aria-label": `Join ${room.info.name}`, onclick: () => enter(room.slug),
        }, "Join");
      return h("li", { class: "browse-item" },
        icon(room.archived ? "archive" : "hash"),
        h("div", { class: "browse-info" },
          h("div", { class: "browse-name" }, room.info.name, room.member ? " " : null,
            room.member ? h("span", { class: "tag tag--success" }, "joined") : null),
          h("div", { class: "browse-meta" }, room.info.topic ? `${members} · ${room.info.topic}` : members)),
        action);
    }));
  }

  async function enter(slug) {
    const ack = await submitFrom(browseDialog, () => controller.enter(slug));
    if (ack.ok) afterEnter();
  }

  browseFilter.addEventListener("input", renderBrowse);

  async function openBrowse() {
    browseFilter.value = "";
    browseList.replaceChildren(h("li", { class: "browse-empty" }, "Loading rooms…"));
    open(browseDialog);
    const ack = await controller.listRooms();
    if (ack.ok) renderBrowse();
    else showError(browseDialog, ack.error);
  }

  // -- direct messages and invitations --
  const dmDialog = byId("dm-dialog");
  dmDialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const user = event.currentTarget.elements.user.value.trim();
    const ack = await submitFrom(dmDialog, () => controller.openDm(user));
    if (ack.ok) afterEnter();
  });

  async function openDm(username) {
    const ack = await controller.openDm(username);
    if (ack.ok) afterEnter();
    else toast(ack.error.message);
  }

  const inviteDialog = byId("invite-dialog");
  inviteDialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const user = event.currentTarget.elements.user.value.trim();
    const slug = store.activeSlug;
    const ack = await submitFrom(inviteDialog, () => controller.invite(slug, user));
    if (ack.ok) toast(`${user} was invited to ${store.roomLabel(store.room(slug))}.`);
  });

  function openInvite() {
    const room = store.activeRoom();
    if (!room) return;
    byId("invite-title").textContent = `Invite someone to ${store.roomLabel(room)}`;
    open(inviteDialog);
  }

  // -- username autocompletion (DM and invite) --
  // The suggestions come from the server as the user pauses typing; a
  // <datalist> lets the browser show them natively and accessibly.
  const suggestions = byId("user-suggestions");
  let lookupTimer = null;
  let lookupSeq = 0;
  for (const input of document.querySelectorAll("[data-complete-users]")) {
    input.addEventListener("input", () => {
      clearTimeout(lookupTimer);
      const query = input.value.trim();
      if (!query) { suggestions.replaceChildren(); return; }
      lookupTimer = setTimeout(async () => {
        const seq = ++lookupSeq;
        const ack = await controller.searchUsers(query);
        // A slower, older answer must not replace a newer one.
        if (seq !== lookupSeq || !ack.ok) return;
        suggestions.replaceChildren(...ack.users
          .filter((user) => user.id !== store.me.id)
          .map((user) => h("option", { value: user.username })));
      }, 150);
    });
  }

  // -- confirmations --
  const confirmDialog = byId("confirm-dialog");
  let confirmAction = null;
  confirmDialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (confirmAction) await submitFrom(confirmDialog, confirmAction);
  });

  function confirm({ title, text, button, action }) {
    byId("confirm-title").textContent = title;
    byId("confirm-text").textContent = text;
    byId("confirm-button").textContent = button;
    confirmAction = action;
    open(confirmDialog);
    byId("confirm-button").focus();
  }

  function confirmDelete(message) {
    const preview = message.body.length > 120 ? `${message.body.slice(0, 120)}…` : message.body;
    const mine = message.user.id === store.me.id;
    confirm({
      title: mine ? "Delete this message?" : `Delete ${message.user.username}’s message?`,
      text: `“${preview}” will be removed for everyone in the room.`,
      button: "Delete",
      action: () => controller.remove(message.id),
    });
  }

  function confirmLeave() {
    const room = store.activeRoom();
    if (!room) return;
    const label = store.roomLabel(room);
    confirm({
      title: `Leave ${label}?`,
      text: room.info.private
        ? "It is a private room: you will need a new invitation to come back."
        : "You can join it again from Browse rooms.",
      button: "Leave room",
      action: async () => {
        const ack = await controller.leave(room.slug);
        if (ack.ok) toast(`You left ${label}.`);
        return ack;
      },
    });
  }

  // -- a short notice at the bottom of the screen --
  const toastRegion = h("div", { class: "toast", role: "status", "aria-live": "polite", hidden: true });
  document.body.append(toastRegion);
  let toastTimer = null;
  function toast(text) {
    toastRegion.textContent = text;
    toastRegion.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toastRegion.hidden = true; }, 4000);
  }

  return {
    createRoom: () => open(createDialog),
    browseRooms: openBrowse,
    openDmDialog: () => open(dmDialog),
    openDm,
    invite: openInvite,
    confirmDelete,
    confirmLeave,
    toast,
  };
}

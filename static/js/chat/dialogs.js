// The page's dialogs: create a room, browse public rooms, message someone,
// invite to a room, a room's settings (owner or admin: name, topic, members,
// deletion), and confirm a deletion, a removal or leaving. Each is a <dialog>
// in templates/chat/index.html opened with showModal(): focus stays inside
// and Esc closes it.

import { avatar, fill, h, icon } from "../lib/dom.js";
import { personName, personText, shownName } from "../lib/people.js";

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
      title: mine ? "Delete this message?" : `Delete ${personText(store.person(message.user))}’s message?`,
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

  // -- room settings (its owner or an admin) --
  const settingsDialog = byId("room-settings-dialog");
  const settingsForm = byId("room-settings-form");
  const settingsMembers = byId("settings-members");
  let settingsSlug = null;

  function openSettings() {
    const room = store.activeRoom();
    if (!store.canManage(room)) return;
    settingsSlug = room.slug;
    open(settingsDialog);
    byId("room-settings-title").textContent = `Settings of ${room.info.name}`;
    settingsForm.elements.name.value = room.info.name;
    settingsForm.elements.topic.value = room.info.topic || "";
    renderSettingsMembers();
  }

  function renderSettingsMembers() {
    const room = settingsSlug ? store.room(settingsSlug) : null;
    if (!room || !settingsDialog.open) return;
    const people = [...room.members.values()].map((user) => store.person(user))
      .sort((a, b) => shownName(a).localeCompare(shownName(b), undefined, { sensitivity: "base" }));
    fill(settingsMembers, people.map((user) => {
      const me = user.id === store.me.id;
      const owner = user.id === room.info.owner_id;
      // The owner leaves rather than removing themself; an admin may remove the owner.
      const removable = !me && (!owner || store.me.isAdmin);
      return h("li", { class: "settings-member" },
        avatar(user.username, { small: true }),
        personName(user, "settings-member-name"),
        owner ? h("span", { class: "tag" }, "owner") : null,
        me ? h("span", { class: "member-you" }, "you") : null,
        removable ? h("button", {
          type: "button", class: "button button--small button--ghost",
          "aria-label": `Remove ${personText(user)} from the room`,
          onclick: () => confirmRemove(room, user),
        }, "Remove") : null);
    }));
  }

  settingsForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const room = store.room(settingsSlug);
    if (!room) return;
    const name = settingsForm.elements.name.value.trim();
    const topic = settingsForm.elements.topic.value.trim();
    const ack = await submitFrom(settingsDialog, () => controller.updateRoom(room.slug, name, topic));
    if (ack.ok) toast(`Saved the settings of ${ack.room.name}.`);
  });

  function confirmRemove(room, user) {
    confirm({
      title: `Remove ${personText(user)}?`,
      text: room.info.private
        ? `They leave ${room.info.name} at once and can no longer read it; only an invitation brings them back.`
        : `They leave ${room.info.name} at once. It is a public room: they can join it again.`,
      button: "Remove",
      action: async () => {
        const ack = await controller.removeMember(room.slug, user);
        if (ack.ok) toast(`${personText(user)} was removed from ${room.info.name}.`);
        return ack;
      },
    });
  }

  byId("delete-room-button").addEventListener("click", () => {
    const room = store.room(settingsSlug);
    if (!room) return;
    settingsDialog.close();
    confirm({
      title: `Delete ${room.info.name}?`,
      text: `The room and all its messages are removed for all ${room.members.size || room.info.member_count} members. This cannot be undone.`,
      button: "Delete room",
      action: async () => {
        const ack = await controller.deleteRoom(room.slug);
        if (ack.ok) toast(`${room.info.name} was deleted.`);
        return ack;
      },
    });
  });

  settingsDialog.addEventListener("close", () => { settingsSlug = null; });
  store.addEventListener("change", ({ detail }) => {
    if (!settingsSlug) return;
    if (!store.room(settingsSlug)) {
      settingsDialog.close();  // deleted meanwhile
      return;
    }
    if (detail.what === "people" || (detail.what === "room" && detail.slug === settingsSlug)) renderSettingsMembers();
  });

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
    roomSettings: openSettings,
    toast,
  };
}

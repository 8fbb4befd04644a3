// The member list of the open room: who is online, who is not, who is
// typing. Choosing someone opens a direct message with them.

import { avatar, coalesced, fill, h } from "../lib/dom.js";
import { personName, personText, shownName } from "../lib/people.js";

export function mountMembers(store, { openDm }) {
  const container = document.getElementById("member-groups");
  const heading = document.getElementById("members-heading");

  const schedule = coalesced(render);

  function render() {
    const room = store.activeRoom();
    if (!room) {
      container.replaceChildren();
      return;
    }
    const byName = (a, b) => shownName(a).localeCompare(shownName(b), undefined, { sensitivity: "base" })
      || a.username.localeCompare(b.username);
    const everyone = [...room.members.values()].map((user) => store.person(user)).sort(byName);
    const online = everyone.filter((user) => room.online.has(user.id));
    const offline = everyone.filter((user) => !room.online.has(user.id));
    heading.textContent = `Members (${everyone.length})`;
    const focusedName = document.activeElement?.closest?.(".member")?.dataset.username;
    fill(container,
      group("Online", online, room, true),
      group("Offline", offline, room, false));
    if (focusedName) container.querySelector(`.member[data-username="${CSS.escape(focusedName)}"]`)?.focus();
  }

  function group(title, users, room, isOnline) {
    if (!users.length) return null;
    const id = `members-${title.toLowerCase()}`;
    return h("section", { class: "member-group", "aria-labelledby": id },
      h("h3", { id }, `${title} — ${users.length}`),
      h("ul", { class: "member-list" }, users.map((user) => h("li", null, memberButton(user, room, isOnline)))));
  }

  function memberButton(user, room, isOnline) {
    const me = user.id === store.me.id;
    const typing = room.typing.has(user.id);
    const state = isOnline ? "online" : "offline";
    return h("button", {
      type: "button",
      class: `member member--${state}`,
      dataset: { username: user.username },
      "aria-label": me ? `${personText(user)} (you), ${state}` : `${personText(user)}, ${state}. Send a direct message`,
      disabled: me,
      onclick: () => openDm(user.username),
    },
    avatar(user.username, { small: true, online: isOnline }),
    personName(user, "member-name"),
    user.bot ? h("span", { class: "tag bot-badge" }, "bot") : null,
    me ? h("span", { class: "member-you" }, "you") : null,
    typing ? h("span", { class: "member-typing" }, "typing…") : null);
  }

  store.addEventListener("change", ({ detail }) => {
    if (detail.what === "active" || ((detail.what === "room" || detail.what === "typing") && detail.slug === store.activeSlug)) {
      schedule();
    }
  });
}

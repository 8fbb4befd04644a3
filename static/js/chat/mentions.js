// Mentions: which messages mention the reader, a message body with its
// mentions marked, and the composer's completion of "@name".
//
// The server decides who a message mentions (its `mentions` ids and
// `mentions_room`); the page only marks the "@name" words that match them,
// building text nodes and <span class="mention"> elements, never HTML.

import { h, linkified } from "../lib/dom.js";
import { rendered } from "../lib/markdown.js";

/** "@" then a username's characters, not inside a word or an address (the server's rule). */
const MENTION_PATTERN = /(?<![\w.@-])@([A-Za-z0-9._-]{2,32})(?![A-Za-z0-9._-])/g;
const TRAILING = /[._-]+$/;
/** How many names the completion list offers at once. */
const MAX_SUGGESTIONS = 8;
export const ROOM_WORD = "room";

/** Whether `message` mentions the reader: by name, or an @room by someone else. */
export function mentionsMe(message, meId) {
  if (!message || message.user?.id === meId) return false;
  return Boolean(message.mentions_room) || (message.mentions || []).includes(meId);
}

/**
 * A body as nodes: formatted as `rendered` does (static/js/lib/markdown.js),
 * its links as `linkified` makes them, and each "@name" the server resolved
 * as a `.mention` span (`.mention--me` for the reader). Mentions are marked
 * in the plain-text runs only: inside code an "@name" stays code.
 * `members`: the room's users by id, to know the mentioned names.
 */
export function mentionedBody(message, members, meId) {
  const text = message.body;
  const ids = message.mentions || [];
  if ((!ids.length && !message.mentions_room) || !text.includes("@")) return rendered(text);
  const names = new Map();
  for (const id of ids) {
    const user = members.get(id);
    if (user) names.set(user.username.toLowerCase(), id);
  }
  return rendered(text, { textRun: (run) => withMentions(run, message, names, meId) });
}

/** A run of text with its links, and its resolved "@name" words as spans. */
function withMentions(text, message, names, meId) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(MENTION_PATTERN)) {
    let word = match[1];
    let key = word.toLowerCase();
    if (!names.has(key) && !(key === ROOM_WORD && message.mentions_room)) {
      word = word.replace(TRAILING, "");
      key = word.toLowerCase();
    }
    const isRoom = key === ROOM_WORD && message.mentions_room;
    if (!isRoom && !names.has(key)) continue;
    const me = isRoom ? message.user?.id !== meId : names.get(key) === meId;
    fragment.append(linkified(text.slice(last, match.index)));
    fragment.append(h("span", { class: me ? "mention mention--me" : "mention" }, `@${word}`));
    last = match.index + 1 + word.length;
  }
  fragment.append(linkified(text.slice(last)));
  return fragment;
}

/** The "@partial" being typed just before the caret, or null. */
function wordAtCaret(field) {
  const upTo = field.value.slice(0, field.selectionStart);
  const match = upTo.match(/(?:^|[^\w.@-])@([A-Za-z0-9._-]{0,32})$/);
  if (!match || field.selectionStart !== field.selectionEnd) return null;
  return { query: match[1], start: field.selectionStart - match[1].length - 1 };
}

/**
 * Complete "@name" in the composer from the open room's members: a listbox
 * under the box, ArrowUp/ArrowDown to move, Enter or Tab to pick, Escape to
 * close. Its keys are taken in the capture phase of the form, before the
 * composer's own (Enter sends) ever see them.
 */
export function mountMentionCompleter(store) {
  const form = document.getElementById("composer");
  const field = document.getElementById("composer-input");
  const list = h("ul", { class: "mention-list", id: "mention-list", role: "listbox",
    "aria-label": "People to mention", hidden: true });
  form.querySelector(".composer-box").append(list);
  field.setAttribute("aria-autocomplete", "list");
  field.setAttribute("aria-controls", list.id);
  field.setAttribute("aria-expanded", "false");
  let state = null; // {start, options: [{name, label}], active}

  function suggestions(query) {
    const room = store.activeRoom();
    if (!room) return [];
    const prefix = query.toLowerCase();
    const people = [...room.members.values()]
      .filter((user) => user.id !== store.me.id && user.username.toLowerCase().startsWith(prefix))
      .sort((a, b) => a.username.localeCompare(b.username, undefined, { sensitivity: "base" }))
      .map((user) => ({ name: user.username, label: user.username, hint: user.bot ? "bot" : "" }));
    // @room is offered to whom the server honours it for: the owner and admins.
    const mayCallRoom = !room.isDm && (room.info.owner_id === store.me.id || store.me.isAdmin);
    if (mayCallRoom && ROOM_WORD.startsWith(prefix)) {
      people.push({ name: ROOM_WORD, label: ROOM_WORD, hint: "everyone in this room" });
    }
    return people.slice(0, MAX_SUGGESTIONS);
  }

  function close() {
    state = null;
    list.hidden = true;
    list.replaceChildren();
    field.setAttribute("aria-expanded", "false");
    field.removeAttribute("aria-activedescendant");
  }

  function render() {
    list.replaceChildren(...state.options.map((option, index) => h("li", {
      id: `mention-option-${index}`,
      role: "option",
      class: "mention-option",
      "aria-selected": String(index === state.active),
      // Picking with the mouse must not blur the box first.
      onmousedown: (event) => event.preventDefault(),
      onclick: () => pick(index),
    }, h("span", { class: "mention-option-name" }, `@${option.label}`),
    option.hint ? h("span", { class: "mention-option-hint" }, option.hint) : null)));
    list.hidden = false;
    field.setAttribute("aria-expanded", "true");
    field.setAttribute("aria-activedescendant", `mention-option-${state.active}`);
  }

  function update() {
    const word = wordAtCaret(field);
    const options = word ? suggestions(word.query) : [];
    if (!options.length) {
      close();
      return;
    }
    const keep = state && state.start === word.start ? Math.min(state.active, options.length - 1) : 0;
    state = { start: word.start, options, active: keep };
    render();
  }

  function pick(index) {
    const option = state?.options[index];
    if (!option) return;
    const before = field.value.slice(0, state.start);
    const after = field.value.slice(field.selectionStart);
    const inserted = `@${option.name} `;
    field.value = before + inserted + after.replace(/^ /, "");
    const caret = before.length + inserted.length;
    field.setSelectionRange(caret, caret);
    close();
    // The composer keeps its draft and send button from the input event.
    field.dispatchEvent(new Event("input", { bubbles: true }));
    field.focus();
  }

  form.addEventListener("keydown", (event) => {
    if (!state || event.target !== field || event.isComposing) return;
    const count = state.options.length;
    let handled = true;
    if (event.key === "ArrowDown") state.active = (state.active + 1) % count;
    else if (event.key === "ArrowUp") state.active = (state.active - 1 + count) % count;
    else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") pick(state.active);
    else if (event.key === "Escape") close();
    else handled = false;
    if (!handled) return;
    event.preventDefault();
    event.stopPropagation();
    if (state) render();
  }, true);

  field.addEventListener("input", update);
  field.addEventListener("click", update);
  field.addEventListener("blur", close);
  store.addEventListener("change", ({ detail }) => {
    if (detail.what === "active") close();
  });
}

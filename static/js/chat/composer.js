// The message box: Enter sends, Shift+Enter makes a new line, Up edits the
// reader's last message; a draft is kept per room. Above it, "Replying to
// X" while the message answers another (Esc or the cross cancels); under
// it, the "is typing" line.

import { fill, h } from "../lib/dom.js";
import { listOfNames } from "../lib/format.js";
import { personText } from "../lib/people.js";

/** What `submit` sends: blank lines around a message are noise; spaces inside it are the author's. */
function outgoing(text) {
  return text.replace(/^(\s*\n)+/, "").trimEnd();
}

/**
 * How many characters `text` is over the server's limit (0 or less: it fits).
 * Counted in code points, as the server counts (an emoji is one, not two).
 */
export function overLimit(text, maxLength) {
  return [...outgoing(text)].length - maxLength;
}

export function mountComposer(store, controller, timeline) {
  const form = document.getElementById("composer");
  const field = document.getElementById("composer-input");
  const sendButton = document.getElementById("send-button");
  const label = document.getElementById("composer-label");
  const typingLine = document.getElementById("typing");
  const limitLine = document.getElementById("composer-limit");
  const replyBar = document.getElementById("composer-reply");
  const replyText = document.getElementById("composer-reply-text");
  // The page carries the server's limit (MESSAGE_MAX_LENGTH), never a copy.
  const maxLength = Number(field.dataset.maxLength) || Infinity;
  // Browsers without CSS `field-sizing` grow the box from its scroll height.
  const growsByItself = CSS.supports("field-sizing", "content");
  let slug = null;

  function grow() {
    if (growsByItself) return;
    field.style.height = "auto";
    field.style.height = `${field.scrollHeight}px`;
  }

  function refresh() {
    const room = store.activeRoom();
    const next = room ? room.slug : null;
    if (next !== slug) {
      const previous = slug && store.room(slug);
      if (previous) previous.draft = field.value;
      slug = next;
      field.value = room ? room.draft : "";
      grow();
    }
    const writable = Boolean(room && !room.archived);
    field.disabled = !writable;
    sendButton.disabled = !writable || !field.value.trim() || refreshLimit() > 0;
    if (!room) return;
    const name = room.isDm ? `@${store.roomLabel(room)}` : `#${store.roomLabel(room)}`;
    field.placeholder = room.archived ? "This room is archived: it is read-only" : `Message ${name}`;
    label.textContent = `Message ${name}`;
  }

  /** Say how far over the limit the draft is; the whole text stays in the box. */
  function refreshLimit() {
    const over = overLimit(field.value, maxLength);
    limitLine.hidden = over <= 0;
    limitLine.textContent = over > 0
      ? `${over} character${over === 1 ? "" : "s"} over the ${maxLength}-character limit: shorten it to send.`
      : "";
    if (over > 0) field.setAttribute("aria-invalid", "true");
    else field.removeAttribute("aria-invalid");
    return over;
  }

  /** The reply being written, per room (kept with the draft when the reader switches). */
  function refreshReply() {
    const room = store.activeRoom();
    const target = room && !room.archived ? room.replyTo : null;
    replyBar.hidden = !target;
    if (!target) {
      replyText.replaceChildren();
      return;
    }
    fill(replyText, "Replying to ", h("strong", null, target.author.username),
      h("span", { class: "composer-reply-excerpt" }, target.excerpt));
  }

  function cancelReply() {
    const room = store.activeRoom();
    if (room?.replyTo) store.setReplyTo(room.slug, null);
    field.focus();
  }

  function refreshTyping() {
    const room = store.activeRoom();
    const names = room ? [...room.typing.values()].map((entry) => personText(store.person(entry.user))) : [];
    typingLine.textContent = names.length
      ? `${listOfNames(names)} ${names.length === 1 ? "is" : "are"} typing…`
      : "";
  }

  function submit() {
    const room = store.activeRoom();
    if (!room || room.archived) return;
    const body = outgoing(field.value);
    if (!body.trim() || overLimit(body, maxLength) > 0) return;
    timeline.stick();
    controller.send(room.slug, body, room.replyTo);
    if (room.replyTo) store.setReplyTo(room.slug, null);
    field.value = "";
    room.draft = "";
    grow();
    sendButton.disabled = true;
    refreshLimit();
    field.focus();
  }

  field.addEventListener("keydown", (event) => {
    if (event.isComposing) return; // an input method is still building a character
    if (event.key === "Enter" && !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      submit();
    } else if (event.key === "Escape" && store.activeRoom()?.replyTo) {
      event.preventDefault();
      cancelReply();
    } else if (event.key === "ArrowUp" && !field.value) {
      const room = store.activeRoom();
      const last = room && !room.archived ? store.lastOwnMessage(room) : null;
      if (last) {
        event.preventDefault();
        store.setEditing({ id: last.id, draft: last.body, error: null, saving: false });
      }
    }
  });

  field.addEventListener("input", () => {
    grow();
    const room = store.activeRoom();
    sendButton.disabled = !field.value.trim() || refreshLimit() > 0;
    if (room) {
      room.draft = field.value;
      if (field.value.trim()) controller.typed(room.slug);
      else controller.stopTyping();
    }
  });
  field.addEventListener("blur", () => controller.stopTyping());

  document.getElementById("composer-reply-cancel").addEventListener("click", cancelReply);

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });

  store.addEventListener("change", ({ detail }) => {
    if (detail.what === "active" || detail.what === "rooms") {
      refresh();
      refreshTyping();
      refreshReply();
    } else if (detail.what === "reply" && detail.slug === store.activeSlug) {
      refreshReply();
    } else if (detail.what === "typing" && detail.slug === store.activeSlug) {
      refreshTyping();
    }
  });
  refresh();
  refreshReply();
}

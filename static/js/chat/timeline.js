// The open room's messages: day separators, grouped messages, pending and
// failed sends, edit in place, and older pages as the reader scrolls up.
// Replies show the message they answer (a click jumps to it); reactions are
// chips under a message, toggled by a click, added from a small picker.
//
// Each render builds the list of rows the room should show, each with a key
// (message id, client_id, day) and a signature of what it displays; a row
// whose signature did not change keeps its DOM node, so a re-render for one
// new message touches one row and leaves focus and selection alone.

import { avatar, coalesced, fill, h, icon, reconcileChildren } from "../lib/dom.js";
import { dayKey, dayLabel, fullDateTime, parseTime, shortDate, timeOfDay } from "../lib/format.js";
import { personName, personText } from "../lib/people.js";
import { deletedQuote, oneLine } from "./store.js";
import { mentionedBody, mentionsMe } from "./mentions.js";
import { rendered } from "../lib/markdown.js";

/** Messages by one author within this gap share one header, as in Slack or Discord. */
const GROUP_GAP_MS = 5 * 60 * 1000;
/** Older messages load when the reader is this close to the top. */
const LOAD_OLDER_MARGIN_PX = 400;
/** "At the bottom" allows for sub-pixel scroll positions and a last line half shown. */
const BOTTOM_SLACK_PX = 48;
/** The reaction picker's choices: the common ones (any emoji is accepted by the server). */
const COMMON_REACTIONS = ["👍", "\u2764\uFE0F", "😂", "🎉", "😮", "😢", "👀", "🙏"];

export function mountTimeline(store, controller, { confirmDelete, focusComposer, replyTo, notify }) {
  const scroller = document.getElementById("timeline");
  const list = document.getElementById("message-list");
  const welcome = document.getElementById("welcome");
  const composer = document.getElementById("composer");
  const jump = document.getElementById("jump-button");
  const jumpText = document.getElementById("jump-text");
  // The server's message limit, as the page renders it (templates/chat/index.html).
  const maxLength = Number(document.getElementById("composer-input").dataset.maxLength) || Infinity;

  const rows = new Map();          // key -> {sig, node}
  let renderedSlug = null;
  let renderedOldest = null;
  let stickToBottom = false;
  // Focus was on "Load older messages" when it went: keep it at the top of
  // the list (on the button again, or the oldest message) once the page is in.
  let focusAtTop = false;

  const isAtBottom = () =>
    scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= BOTTOM_SLACK_PX;

  const schedule = coalesced(render);

  function render() {
    const room = store.activeRoom();
    document.getElementById("shell").classList.toggle("no-room", !room);
    if (!room) {
      scroller.hidden = true;
      composer.hidden = true;
      jump.hidden = true;
      welcome.hidden = !store.ready;
      list.replaceChildren();
      rows.clear();
      renderedSlug = null;
      return;
    }
    welcome.hidden = true;
    scroller.hidden = false;
    composer.hidden = false;

    const switching = room.slug !== renderedSlug;
    if (switching) {
      rows.clear();
      list.replaceChildren();
      // A screen reader would read the whole history as "new" in a log.
      list.setAttribute("aria-busy", "true");
    }
    const wasAtBottom = switching || isAtBottom();
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;

    if (switching) focusAtTop = false;
    const focused = list.contains(document.activeElement) ? document.activeElement.closest("li") : null;
    // A control that says which it is (a chip, a row's button): found again
    // in the row's new node when the row is rebuilt around it.
    const focusKey = focused ? document.activeElement.dataset.focus : undefined;
    const items = rowsOf(room);
    const keys = new Set();
    const nodes = items.map((item) => {
      keys.add(item.key);
      const known = rows.get(item.key);
      if (known && known.sig === item.sig) return known.node;
      const node = item.build();
      rows.set(item.key, { sig: item.sig, node });
      return node;
    });
    for (const key of [...rows.keys()]) if (!keys.has(key)) rows.delete(key);
    reconcileChildren(list, nodes);
    const again = focused && !focused.isConnected && focusKey && focused.dataset.id
      ? list.querySelector(`li[data-id="${focused.dataset.id}"] [data-focus="${CSS.escape(focusKey)}"]`) : null;
    if (again) {
      again.focus({ preventScroll: true });
    } else if (focused && !focused.isConnected) {
      // The focused row was replaced (the older-page button turned into a
      // spinner) or removed (a deleted message): without this, focus falls
      // to the page body and a keyboard user starts over from the top.
      if (focused.classList.contains("timeline-top")) focusAtTop = true;
      focusList();
    }
    if (focusAtTop && !room.loadingOlder) {
      focusAtTop = false;
      const button = list.querySelector(".timeline-top button");
      const oldest = list.querySelector("li.msg");
      if (button) button.focus({ preventScroll: true });
      else if (oldest) {
        oldest.tabIndex = -1;
        oldest.focus({ preventScroll: true });
      }
    }

    const oldest = room.oldestId();
    const prepended = !switching && renderedOldest !== null && oldest !== null && oldest < renderedOldest;
    const divider = switching ? list.querySelector(".unread-divider") : null;
    const highlight = store.highlight?.slug === room.slug && !store.highlight.scrolled
      ? list.querySelector(`li.msg[data-id="${store.highlight.id}"]`) : null;
    if (highlight) {
      // A search result: the message in the middle of the screen.
      store.highlight.scrolled = true;
      highlight.scrollIntoView({ block: "center" });
      highlight.tabIndex = -1;
      highlight.focus({ preventScroll: true });
    } else if (divider && divider.offsetTop > scroller.clientHeight / 2) {
      // Open where the reader left off: the first unread message near the top.
      scroller.scrollTop = divider.offsetTop - 64;
    } else if (stickToBottom || ((switching || wasAtBottom) && room.shownUpTo === null)) {
      scroller.scrollTop = scroller.scrollHeight;
    } else if (prepended) {
      // Older messages went in above: keep the reader's place.
      scroller.scrollTop = scroller.scrollHeight - fromBottom;
    }
    if (switching) queueMicrotask(() => list.removeAttribute("aria-busy"));
    renderedSlug = room.slug;
    renderedOldest = oldest;
    stickToBottom = false;
    updateScrollState(room);

    // A first page shorter than the screen: fetch older ones now, since
    // there is nothing to scroll yet.
    if (room.hasOlder && !room.loadingOlder && scroller.scrollHeight <= scroller.clientHeight + LOAD_OLDER_MARGIN_PX) {
      controller.loadOlder(room.slug);
    }
    // Likewise below an older page that ends on the screen.
    if (room.shownUpTo !== null && !room.loadingNewer
      && scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < LOAD_OLDER_MARGIN_PX) {
      controller.loadNewer(room.slug);
    }
  }

  function focusList() {
    list.tabIndex = -1;
    list.focus({ preventScroll: true });
  }

  function updateScrollState(room) {
    const bottom = isAtBottom();
    if (bottom !== store.atBottom) {
      store.atBottom = bottom;
      if (bottom) controller.caughtUp();
    }
    const distance = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
    // On an older page the button leads back to the latest messages.
    jump.hidden = room.shownUpTo === null && (bottom || (!room.newBelow && distance < scroller.clientHeight));
    jumpText.textContent = room.newBelow
      ? `${room.newBelow} new message${room.newBelow === 1 ? "" : "s"}`
      : "Jump to the latest";
  }

  // -- the rows --

  function rowsOf(room) {
    const items = [];
    const label = store.roomLabel(room);
    // A deleted message leaves the list live as it does from history (which
    // never holds it): the store keeps it only so that a page cannot bring it back.
    // Opened at an older message (a search result): up to the page's end,
    // until the newer pages are loaded.
    const upTo = room.shownUpTo;
    const shown = room.sorted().filter((message) => !message.deleted && (upTo === null || message.id <= upTo));
    const highlighted = store.highlight?.slug === room.slug ? store.highlight.id : null;
    const empty = shown.length === 0 && room.pending.size === 0;
    if (room.hasOlder) {
      items.push({ key: "older", sig: String(room.loadingOlder), build: () => olderRow(room) });
    } else {
      items.push({
        key: "intro",
        sig: [label, room.info.topic, empty, room.info.private].join("\u0000"),
        build: () => introRow(room, label, empty),
      });
    }
    const me = store.me;
    const editing = store.editing;
    let lastDay = null;
    let previous = null;
    const entries = [
      ...shown.map((message) => ({ message, time: parseTime(message.created_at) })),
      ...[...room.pending.values()].map((pending) => ({ pending, time: parseTime(pending.created_at) })),
    ];
    for (const entry of entries) {
      const day = dayKey(entry.time);
      if (day !== lastDay) {
        const text = dayLabel(entry.time);
        items.push({ key: `day:${day}`, sig: text, build: () => h("li", { class: "day-divider" }, h("span", null, text)) });
        lastDay = day;
        previous = null;
      }
      if (entry.message && entry.message.id === room.firstUnreadId) {
        items.push({ key: "unread", sig: "", build: () => h("li", { class: "unread-divider" }, "New") });
        previous = null;
      }
      const authorId = entry.message ? entry.message.user.id : me.id;
      // A reply starts a group of its own, so its quote sits under a header.
      const replying = Boolean((entry.message || entry.pending).reply_to);
      const continued = Boolean(previous && previous.authorId === authorId && !replying
        && entry.time - previous.time < GROUP_GAP_MS);
      previous = { authorId, time: entry.time };

      if (entry.message) {
        const message = entry.message;
        const mine = message.user.id === me.id;
        const writable = !room.archived;
        const canEdit = mine && writable;
        // The contract's rule: the author, the room's owner or an admin.
        const canDelete = mine || me.isAdmin || room.info.owner_id === me.id;
        const edit = editing && editing.id === message.id ? editing : null;
        // The author as last heard of: a new display name redraws their messages.
        const author = store.person(message.user);
        const highlight = message.id === highlighted;
        const quote = quoteOf(room, message.reply_to);
        const sig = JSON.stringify([message.body, message.edited_at, Boolean(message.deleted), continued,
          (message.mentions || []).map((id) => room.members.get(id)?.username ?? null),
          Boolean(message.mentions_room),
          canEdit, canDelete, writable, edit ? [edit.saving, edit.error?.message ?? ""] : null,
          author.display_name, highlight, quote, message.reactions]);
        items.push({
          key: `m:${message.id}`,
          sig,
          build: () => messageRow(room, message, author,
            { continued, mine, canEdit, canDelete, edit, writable, quote, highlight, members: room.members }),
        });
      } else {
        const pending = entry.pending;
        const sig = JSON.stringify([pending.status, pending.error?.message ?? "", continued, me.displayName,
          quoteOf(room, pending.reply_to)]);
        items.push({ key: `p:${pending.client_id}`, sig, build: () => pendingRow(room, pending, continued) });
      }
    }
    if (upTo !== null) {
      items.push({ key: "newer", sig: String(room.loadingNewer), build: () => newerRow(room) });
    }
    return items;
  }

  function newerRow(room) {
    const content = room.loadingNewer
      ? h("div", { class: "timeline-loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }),
        "Loading newer messages…")
      : h("div", { class: "timeline-loading" }, h("button", {
        type: "button", class: "button button--small", onclick: () => controller.loadNewer(room.slug),
      }, "Load newer messages"));
    return h("li", { class: "timeline-bottom" }, content);
  }

  function olderRow(room) {
    const content = room.loadingOlder
      ? h("div", { class: "timeline-loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }),
        "Loading older messages…")
      : h("div", { class: "timeline-loading" }, h("button", {
        type: "button", class: "button button--small", onclick: () => controller.loadOlder(room.slug),
      }, "Load older messages"));
    return h("li", { class: "timeline-top" }, content);
  }

  function introRow(room, label, empty) {
    const badge = room.isDm ? avatar(store.dmPeer(room)?.username || label) : icon(room.info.private ? "lock" : "hash");
    const created = shortDate(parseTime(room.info.created_at));
    const text = room.isDm
      ? `This is the beginning of your direct messages with ${label}. Only the two of you can see them.`
      : `This is the very beginning of ${room.info.private ? "the private room" : "the room"} ${label}, created on ${created}.`;
    return h("li", { class: "timeline-intro" },
      room.isDm ? badge : h("div", { class: "timeline-intro-icon" }, badge),
      h("h2", null, room.isDm ? label : `Welcome to ${label}`),
      room.info.topic && !room.isDm ? h("p", null, room.info.topic) : null,
      h("p", null, text),
      empty ? h("p", { class: "timeline-empty" }, "No messages yet. Say hello below!") : null);
  }

  function timeElement(date) {
    return h("time", { datetime: date.toISOString(), title: fullDateTime(date) }, timeOfDay(date));
  }

  /**
   * What a reply shows of the message it answers: the original as held
   * (its current text), else the server's quote; null for no reply.
   */
  function quoteOf(room, replyTo) {
    if (!replyTo) return null;
    const original = room.messages.get(replyTo.id);
    // The server's excerpt is the raw start of the text: shown without its markers.
    if (!original) return replyTo.deleted ? replyTo : { ...replyTo, excerpt: oneLine(replyTo.excerpt) };
    if (original.deleted) return deletedQuote(replyTo.id);
    return { id: original.id, author: original.user, excerpt: oneLine(original.body), deleted: false };
  }

  function quoteElement(room, quote) {
    if (quote.deleted) {
      return h("div", { class: "msg-quote msg-quote--deleted" }, icon("reply", "icon--small"),
        h("span", { class: "msg-quote-text" }, "Original message deleted"));
    }
    return h("button", {
      type: "button", class: "msg-quote", dataset: { focus: "quote" },
      title: "Show the original message",
      "aria-label": `In reply to ${personText(store.person(quote.author))}: ${quote.excerpt}. Show the original message`,
      onclick: () => jumpTo(room.slug, quote.id),
    }, icon("reply", "icon--small"), personName(store.person(quote.author), "msg-quote-author"),
    h("span", { class: "msg-quote-text" }, quote.excerpt));
  }

  function reactionBar(message, writable) {
    if (!message.reactions.length) return null;
    return h("div", { class: "reactions", role: "group", "aria-label": "Reactions" },
      message.reactions.map((reaction) => {
        const people = `${reaction.count} ${reaction.count === 1 ? "person" : "people"}`;
        const who = reaction.me
          ? (reaction.count === 1 ? "You" : `You and ${reaction.count - 1} more`) : people;
        return h("button", {
          type: "button",
          class: `reaction-chip${reaction.me ? " reaction-chip--mine" : ""}`,
          "aria-pressed": String(reaction.me),
          "aria-label": `${reaction.emoji} ${people}${reaction.me ? ", you included" : ""}`,
          title: `${who} reacted with ${reaction.emoji}${writable ? (reaction.me ? ": click to take yours back" : ": click to add yours") : ""}`,
          disabled: !writable,
          dataset: { focus: `chip:${reaction.emoji}` },
          onclick: () => react(message, reaction.emoji),
        }, h("span", { class: "reaction-emoji", "aria-hidden": "true" }, reaction.emoji),
        h("span", { class: "reaction-count", "aria-hidden": "true" }, String(reaction.count)));
      }),
      writable ? h("button", {
        type: "button", class: "reaction-chip reaction-chip--add", title: "Add a reaction",
        "aria-label": "Add a reaction", "aria-haspopup": "dialog", dataset: { focus: "add-reaction" },
        onclick: (event) => openPicker(event.currentTarget, message.id),
      }, icon("smile", "icon--small")) : null);
  }

  function messageRow(room, message, author, { continued, mine, canEdit, canDelete, edit, writable, quote, highlight, members }) {
    const created = parseTime(message.created_at);
    const classes = ["msg"];
    if (highlight) classes.push("msg--highlight");
    if (mentionsMe(message, store.me.id)) classes.push("msg--mentions-me");
    if (continued) classes.push("msg--continued");
    if (mine) classes.push("msg--mine");
    if (edit) classes.push("msg--editing");

    const gutter = h("div", { class: "msg-gutter" },
      continued ? timeElement(created) : avatar(author.username));
    const meta = continued
      ? h("span", { class: "visually-hidden" }, `${personText(author)}, ${timeOfDay(created)}: `)
      : h("div", { class: "msg-meta" }, personName(author, "msg-author"),
          author.bot ? h("span", { class: "tag bot-badge" }, "bot") : null, timeElement(created));

    let body;
    if (edit) {
      body = editForm(message, edit);
    } else {
      body = h("div", { class: "msg-body" }, h("span", { class: "msg-text" }, mentionedBody(message, members, store.me.id)),
        message.edited_at
          ? h("span", { class: "msg-edited", title: `Edited ${fullDateTime(parseTime(message.edited_at))}` }, "(edited)")
          : null);
    }

    let actions = null;
    if (!edit && (writable || canEdit || canDelete)) {
      actions = h("div", { class: "msg-actions", role: "group", "aria-label": "Message actions" },
        writable ? h("button", {
          type: "button", class: "icon-button", title: "Reply", "aria-label": "Reply to this message",
          dataset: { focus: "reply" },
          onclick: () => replyTo(room.slug, message),
        }, icon("reply")) : null,
        writable ? h("button", {
          type: "button", class: "icon-button", title: "Add a reaction", "aria-label": "Add a reaction",
          "aria-haspopup": "dialog", dataset: { focus: "react" },
          onclick: (event) => openPicker(event.currentTarget, message.id),
        }, icon("smile")) : null,
        canEdit ? h("button", {
          type: "button", class: "icon-button", title: "Edit", "aria-label": "Edit message",
          onclick: () => store.setEditing({ id: message.id, draft: message.body, error: null, saving: false }),
        }, icon("edit")) : null,
        canDelete ? h("button", {
          type: "button", class: "icon-button icon-button--danger", title: "Delete", "aria-label": "Delete message",
          onclick: () => confirmDelete(message),
        }, icon("trash")) : null);
    }
    return h("li", { class: classes.join(" "), dataset: { id: message.id } },
      gutter, h("div", { class: "msg-main" }, meta, quote ? quoteElement(room, quote) : null, body,
        edit ? null : reactionBar(message, writable)), actions);
  }

  function editForm(message, edit) {
    // No maxlength, as in the composer: too long is said on save, never cut.
    const field = h("textarea", { "aria-label": "Edit message", rows: "2" });
    field.value = edit.draft;
    const cancel = () => {
      store.setEditing(null);
      focusComposer();
    };
    const save = async () => {
      const body = field.value;
      if (!body.trim()) {
        store.setEditing({ ...edit, draft: body, error: { message: "A message cannot be empty; delete it instead." } });
        return;
      }
      if (body === message.body) {
        cancel();
        return;
      }
      const over = [...body].length - maxLength;
      if (over > 0) {
        store.setEditing({ ...edit, draft: body, error: { message: `${over} character${over === 1 ? "" : "s"} over the ${maxLength}-character limit: shorten it to save.` } });
        return;
      }
      store.setEditing({ ...edit, draft: body, saving: true, error: null });
      const ack = await controller.edit(message.id, body);
      if (store.editing?.id !== message.id) return;
      if (ack.ok) {
        cancel();
      } else {
        store.setEditing({ ...store.editing, saving: false, error: ack.error });
      }
    };
    field.addEventListener("input", () => { if (store.editing) store.editing.draft = field.value; });
    field.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        save();
      } else if (event.key === "Escape") {
        event.preventDefault();
        cancel();
      }
    });
    queueMicrotask(() => {
      field.focus();
      field.setSelectionRange(field.value.length, field.value.length);
    });
    return h("form", { class: "edit-form", onsubmit: (event) => { event.preventDefault(); save(); } },
      field,
      edit.error ? h("p", { class: "form-error", role: "alert" }, edit.error.message) : null,
      h("div", { class: "edit-form-actions" },
        h("button", { type: "submit", class: "button button--primary button--small", disabled: edit.saving }, "Save"),
        h("button", { type: "button", class: "button button--small", onclick: cancel }, "Cancel"),
        h("span", { class: "edit-form-hint" }, "Enter to save, Esc to cancel")));
  }

  function pendingRow(room, pending, continued) {
    const me = store.me;
    const created = parseTime(pending.created_at);
    const failed = pending.status === "failed";
    const classes = ["msg", "msg--mine", "msg--pending"];
    if (continued) classes.push("msg--continued");
    if (failed) classes.push("msg--failed");

    let status;
    if (failed) {
      status = h("div", { class: "msg-status", role: "alert" },
        icon("alert", "icon--small"),
        h("span", null, `Not sent: ${pending.error?.message || "unknown error"}`,
          pending.error?.retry_after ? ` (try again in ${Math.ceil(pending.error.retry_after)} s)` : ""),
        h("button", {
          type: "button", class: "button button--small", onclick: () => controller.retry(room.slug, pending.client_id),
        }, icon("retry", "icon--small"), "Retry"),
        h("button", {
          type: "button", class: "button button--small button--ghost",
          onclick: () => controller.discard(room.slug, pending.client_id),
        }, "Discard"));
    } else {
      status = h("div", { class: "msg-status" },
        pending.status === "queued" ? "Waiting for the connection…" : "Sending…");
    }
    return h("li", { class: classes.join(" "), dataset: { clientId: pending.client_id } },
      h("div", { class: "msg-gutter" }, continued ? timeElement(created) : avatar(me.username)),
      h("div", { class: "msg-main" },
        continued ? null : h("div", { class: "msg-meta" },
          personName(store.person({ id: me.id, username: me.username }), "msg-author"), timeElement(created)),
        pending.reply_to ? quoteElement(room, quoteOf(room, pending.reply_to)) : null,
        h("div", { class: "msg-body" }, h("span", { class: "msg-text" }, rendered(pending.body))),
        status));
  }

  // -- reactions --

  const picker = h("div", { class: "reaction-picker", id: "reaction-picker", role: "dialog",
    "aria-label": "Choose a reaction", hidden: true });
  document.body.append(picker);
  let pickerFor = null;        // the message id the picker reacts to
  let pickerOpener = null;     // the button that opened it: focus goes back there

  function openPicker(opener, messageId) {
    if (!picker.hidden && pickerFor === messageId) {
      closePicker();
      return;
    }
    pickerFor = messageId;
    pickerOpener = opener;
    fill(picker, COMMON_REACTIONS.map((emoji) => h("button", {
      type: "button", class: "reaction-option", title: emoji, "aria-label": `React with ${emoji}`,
      onclick: () => choose(emoji),
    }, emoji)));
    picker.hidden = false;
    // Above the button when there is room, else below; never off screen.
    const box = opener.getBoundingClientRect();
    const width = picker.offsetWidth;
    const height = picker.offsetHeight;
    const top = box.top - height - 6 >= 8 ? box.top - height - 6 : box.bottom + 6;
    const left = Math.max(8, Math.min(box.right - width, window.innerWidth - width - 8));
    picker.style.top = `${Math.round(top)}px`;
    picker.style.left = `${Math.round(left)}px`;
    picker.querySelector("button").focus();
  }

  function closePicker({ restoreFocus = true } = {}) {
    if (picker.hidden) return;
    picker.hidden = true;
    const opener = pickerOpener;
    pickerFor = null;
    pickerOpener = null;
    if (!restoreFocus) return;
    if (opener?.isConnected) opener.focus();
    else focusComposer();
  }

  function choose(emoji) {
    const message = store.activeRoom()?.messages.get(pickerFor);
    closePicker();
    if (message && !message.deleted) react(message, emoji);
  }

  /** Toggle the reader's `emoji` on `message`: taken back if theirs, added if not. */
  async function react(message, emoji) {
    const mine = message.reactions.some((r) => r.emoji === emoji && r.me);
    const ack = await controller.react(message.id, emoji, mine);
    if (!ack.ok) notify(`Could not ${mine ? "remove" : "add"} the reaction: ${ack.error.message}`);
  }

  picker.addEventListener("keydown", (event) => {
    const options = [...picker.querySelectorAll("button")];
    const index = options.indexOf(document.activeElement);
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      closePicker();
    } else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      event.preventDefault();
      const step = event.key === "ArrowRight" ? 1 : -1;
      options[(index + step + options.length) % options.length].focus();
    } else if (event.key === "Tab") {
      // A small menu: Tab leaves it, back to where it was opened.
      event.preventDefault();
      closePicker();
    }
  });
  document.addEventListener("pointerdown", (event) => {
    if (!picker.hidden && !picker.contains(event.target) && !pickerOpener?.contains(event.target)) {
      closePicker({ restoreFocus: false });
    }
  });

  // -- replies --

  /**
   * Scroll to message `id` of the open room and highlight it, loading older
   * pages first when it is further back than what is loaded.
   */
  async function jumpTo(slug, id) {
    const live = await controller.reveal(slug, id);
    if (store.activeSlug !== slug) return;
    render();
    const node = live ? list.querySelector(`li.msg[data-id="${id}"]`) : null;
    if (!node) {
      const room = store.room(slug);
      const oldest = room?.oldestId();
      // Loaded messages are contiguous: an id within them that is not held is gone.
      const gone = !room?.hasOlder || room.messages.has(id) || (oldest !== null && id > oldest);
      notify(gone
        ? "The original message was deleted."
        : "The original message is too far back to show here.");
      return;
    }
    node.scrollIntoView({ block: "center" });
    node.classList.remove("msg--highlight");
    void node.offsetWidth; // restart the animation on a second click
    node.classList.add("msg--highlight");
    node.tabIndex = -1;
    node.focus({ preventScroll: true });
    updateScrollState(store.room(slug));
  }

  // -- wiring --

  scroller.addEventListener("scroll", () => {
    closePicker({ restoreFocus: false });
    const room = store.activeRoom();
    if (!room) return;
    if (scroller.scrollTop < LOAD_OLDER_MARGIN_PX && room.hasOlder && !room.loadingOlder) {
      controller.loadOlder(room.slug);
    }
    const below = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
    if (below < LOAD_OLDER_MARGIN_PX && room.shownUpTo !== null && !room.loadingNewer) {
      controller.loadNewer(room.slug);
    }
    updateScrollState(room);
  }, { passive: true });

  jump.addEventListener("click", async () => {
    const opened = store.activeRoom();
    if (opened && opened.shownUpTo !== null) {
      stickToBottom = true;
      await controller.showLatest(opened.slug);
    }
    scroller.scrollTop = scroller.scrollHeight;
    const room = store.activeRoom();
    if (room) updateScrollState(room);
    focusComposer();
  });

  // The layout changes (a drawer, the keyboard on a phone): stay at the bottom.
  new ResizeObserver(() => {
    if (store.atBottom) scroller.scrollTop = scroller.scrollHeight;
  }).observe(scroller);

  store.addEventListener("change", ({ detail }) => {
    if (detail.what === "active") closePicker({ restoreFocus: false });
    if (detail.what === "active" || detail.what === "ready"
      || (detail.what === "room" && detail.slug === store.activeSlug)) {
      schedule();
    }
  });

  return {
    /** The reader just sent a message: show it, at the bottom. */
    stick() {
      stickToBottom = true;
      schedule();
    },
    render: schedule,
  };
}

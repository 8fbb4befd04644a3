// The chat page's state: rooms, their messages, members, presence, and the
// people seen (by id, with their current display name).
//
// One store, changed only through its methods; each change notifies the
// views with what changed (`rooms`, `room` + slug, `typing` + slug, `active`,
// `connection`, `announcements`, `ready`). Messages are kept by id, so a message that
// arrives twice (live, then again in a catch-up page) is shown once, and
// pending messages by `client_id` until the server confirms them. Each room
// keeps the cursor of the last change it applied (its position in the
// room's change log); a change at or below it is a duplicate.
//
// Replies and reactions: a message's `reply_to` quotes the message it
// answers; when that one is deleted, the quote turns into "deleted" here as
// the server's history and log do. `reactions` are [{emoji, count, me}]:
// pages carry `me` (the reader's own), live `reaction:updated` changes carry
// the new count and who, from which `me` follows.

/**
 * A message's text on one line, as a quote shows it: without its formatting
 * markers (plain text), CSS ends it with an ellipsis; the server's own
 * `excerpt` is the start of the same line, markers included.
 */
export function oneLine(body) {
  return plainText(body).split(/\s+/).filter(Boolean).join(" ");
}

/** A quoted original once it is deleted: no author, no text (as the server sends it). */
export function deletedQuote(id) {
  return { id, author: null, excerpt: null, deleted: true };
}

/** Reactions as held: `me` is false unless known otherwise. */
function heldReactions(reactions, previous = []) {
  const mine = new Map(previous.map((r) => [r.emoji, Boolean(r.me)]));
  return (reactions || []).map((r) => ({
    emoji: r.emoji, count: r.count, me: r.me === undefined ? mine.get(r.emoji) ?? false : Boolean(r.me),
  }));
}

/** How long a "typing" notice lasts without a refresh (the typist resends every few seconds). */
const TYPING_EXPIRY_MS = 6000;

import { plainText } from "../lib/markdown.js";
import { personText } from "../lib/people.js";

const DISMISSED_KEY = "parley.dismissedAnnouncements";
const DISMISSED_KEPT = 50;

function dismissedAnnouncements() {
  try {
    return new Set(JSON.parse(localStorage.getItem(DISMISSED_KEY) || "[]"));
  } catch {
    return new Set();
  }
}

function isExpired(announcement) {
  return Boolean(announcement.expires_at) && Date.parse(announcement.expires_at) <= Date.now();
}

export class Room {
  constructor(info) {
    this.info = info;               // the server's Room object, without `unread`, `mentions_unread`, `notify`
    this.member = false;
    this.unread = 0;
    this.mentionsUnread = 0;        // of the unread, those that mention the reader
    this.mentionIds = new Set();    // unread mentions counted here since the server's last count
    this.notify = "mentions";       // the reader's level: "all", "mentions" or "none"
    this.joined = false;            // joined on the current connection
    this.members = new Map();       // user id -> User
    this.online = new Set();        // user ids
    this.typing = new Map();        // user id -> {user, timer}
    this.messages = new Map();      // id -> Message (+ `deleted`)
    this.pending = new Map();       // client_id -> {client_id, body, created_at, status, error, attempt}
    this.maxId = 0;                 // the largest id seen, the catch-up cursor
    this.readUpTo = 0;              // the last id this page sent as read
    this.loaded = false;            // a first page has arrived
    this.hasOlder = false;
    this.loadingOlder = false;
    // Opened at an older message (a search result): the messages shown end
    // at this id until the newer ones are loaded; null when shown to the latest.
    this.shownUpTo = null;
    this.loadingNewer = false;
    this.cursor = null;             // the last change-log position applied; null before a first join
    this.catchingUp = false;        // a join or catch-up is in flight: live changes wait in `held`
    this.held = [];                 // [{event, data}] live changes that arrived meanwhile
    this.firstUnreadId = null;      // where the "new" line goes while the room is open
    this.newBelow = 0;              // messages that arrived while the reader was scrolled up
    this.draft = "";
    this.replyTo = null;            // {id, author, excerpt}: what the composer answers
    this.sortedCache = null;
  }

  get slug() { return this.info.slug; }
  get isDm() { return Boolean(this.info.dm); }
  get archived() { return Boolean(this.info.archived); }

  /** Confirmed messages, ascending by id (the order of record). */
  sorted() {
    if (!this.sortedCache) {
      this.sortedCache = [...this.messages.values()].sort((a, b) => a.id - b.id);
    }
    return this.sortedCache;
  }

  oldestId() {
    const list = this.sorted();
    return list.length ? list[0].id : null;
  }
}

export class ChatStore extends EventTarget {
  constructor(me) {
    super();
    this.me = me;                   // {id, username, displayName, isAdmin}
    this.rooms = new Map();         // slug -> Room
    // user id -> User as last heard (join answers, presence, user:updated):
    // messages are drawn with their author's current name, not the one
    // their payload was recorded with.
    this.people = new Map();
    this.activeSlug = null;
    this.connection = { state: "connecting", attempt: 0, message: "" };
    this.announcements = [];
    this.editing = null;            // {id, draft, error, saving}
    this.atBottom = true;
    this.announcementSeq = 0;
    this.highlight = null;          // {slug, id, scrolled}: a search result opened in its room
  }

  notify(what, slug = null) {
    this.dispatchEvent(new CustomEvent("change", { detail: { what, slug } }));
  }

  // -- people --

  /** `user` (any User object) as last heard of: with their current display name. */
  person(user) {
    if (user.id === this.me.id) {
      return { ...user, username: this.me.username, display_name: this.me.displayName ?? null };
    }
    return this.people.get(user.id) || user;
  }

  /** Remember people from an answer that is current (join, presence); `onlyNew` keeps what is known. */
  learnPeople(users, { onlyNew = false } = {}) {
    for (const user of users) {
      if (user.id === this.me.id || (onlyNew && this.people.has(user.id))) continue;
      this.people.set(user.id, user);
    }
  }

  /** `user:updated`: someone (perhaps the reader) has a new display name; every view redraws them. */
  updateUser(user) {
    if (user.id === this.me.id) this.me.displayName = user.display_name ?? null;
    else this.people.set(user.id, user);
    for (const room of this.rooms.values()) {
      if (room.members.has(user.id)) room.members.set(user.id, user);
      const typing = room.typing.get(user.id);
      if (typing) typing.user = user;
      this.notify("room", room.slug);
    }
    this.notify("rooms");
    this.notify("people");
  }

  // -- rooms --

  room(slug) { return this.rooms.get(slug) || null; }
  activeRoom() { return this.activeSlug ? this.room(this.activeSlug) : null; }
  memberRooms() { return [...this.rooms.values()].filter((room) => room.member); }

  /** Add or refresh a room from a server Room object. */
  upsertRoom(info) {
    const { unread, mentions_unread: mentionsUnread, notify, ...rest } = info;
    let room = this.rooms.get(info.slug);
    if (room && rest.created_at && room.info.created_at && rest.created_at !== room.info.created_at) {
      // Another room at the same address: the one held was deleted while
      // this page was away, and its messages and cursor mean nothing here.
      this.rooms.delete(info.slug);
      room = null;
    }
    if (room) {
      room.info = { ...room.info, ...rest };
    } else {
      room = new Room(rest);
      this.rooms.set(info.slug, room);
    }
    // `unread` is present exactly when the caller is a member.
    if (unread !== undefined) {
      room.member = true;
      room.unread = unread;
      room.mentionsUnread = mentionsUnread ?? 0;
      room.mentionIds.clear();
    }
    if (notify !== undefined) room.notify = notify;
    return room;
  }

  /** An admin archived (read-only) or reopened a room: the composer follows at once. */
  setArchived(slug, archived) {
    const room = this.rooms.get(slug);
    if (!room || room.archived === Boolean(archived)) return;
    room.info = { ...room.info, archived: Boolean(archived) };
    if (archived && this.editing && room.messages.has(this.editing.id)) this.editing = null;
    this.notify("rooms");
    this.notify("room", slug);
  }

  /** `room:updated`: a new name or topic. */
  updateRoomInfo(slug, { name, topic }) {
    const room = this.rooms.get(slug);
    if (!room) return;
    room.info = { ...room.info, name, topic };
    this.notify("rooms");
    this.notify("room", slug);
  }

  /** `member:added` / `member:removed`. */
  setMember(slug, user, isMember) {
    const room = this.rooms.get(slug);
    if (!room) return;
    if (isMember) {
      this.learnPeople([user], { onlyNew: true });
      room.members.set(user.id, this.person(user));
    } else {
      room.members.delete(user.id);
      room.online.delete(user.id);
    }
    this.notify("room", slug);
  }

  /** The rooms:list answer: everything visible now; what is gone is dropped. */
  replaceRooms(list) {
    const seen = new Set();
    for (const info of list) {
      const room = this.upsertRoom(info);
      seen.add(room.slug);
      if (info.unread === undefined) room.member = false;
    }
    for (const slug of [...this.rooms.keys()]) {
      if (!seen.has(slug)) this.rooms.delete(slug);
    }
    if (this.activeSlug && !this.room(this.activeSlug)?.member) this.activeSlug = null;
    this.notify("rooms");
  }

  /** The reader left or was removed: a private room disappears from the page. */
  forgetMembership(slug) {
    const room = this.room(slug);
    if (!room) return;
    room.member = false;
    room.joined = false;
    room.unread = 0;
    room.mentionsUnread = 0;
    room.mentionIds.clear();
    if (room.info.private) this.rooms.delete(slug);
    if (this.activeSlug === slug) {
      this.activeSlug = null;
      this.notify("active");
    }
    this.notify("rooms");
  }

  /** `room:deleted`: the room is gone for everyone. */
  forgetRoom(slug) {
    if (!this.rooms.has(slug)) return;
    this.rooms.delete(slug);
    if (this.editing && this.activeSlug === slug) this.editing = null;
    if (this.activeSlug === slug) {
      this.activeSlug = null;
      this.notify("active");
    }
    this.notify("rooms");
  }

  /** Whether the reader may rename the room, remove its members or delete it. */
  canManage(room) {
    return Boolean(room && !room.isDm && (this.me.isAdmin || room.info.owner_id === this.me.id));
  }

  setActive(slug) {
    if (this.activeSlug === slug) return;
    const previous = this.activeRoom();
    if (previous) {
      previous.firstUnreadId = null;
      previous.newBelow = 0;
    }
    this.activeSlug = slug;
    this.editing = null;
    if (this.highlight && this.highlight.slug !== slug) this.highlight = null;
    const room = this.activeRoom();
    if (room) room.firstUnreadId = this.firstUnreadOf(room);
    this.atBottom = true;
    this.notify("active");
    this.notify("rooms");
  }

  /** The id of the first unread message: the `unread`-th last message by someone else. */
  firstUnreadOf(room) {
    if (!room.unread) return null;
    let left = room.unread;
    const list = room.sorted();
    for (let i = list.length - 1; i >= 0; i -= 1) {
      const message = list[i];
      if (message.deleted || message.user.id === this.me.id) continue;
      left -= 1;
      if (left === 0) return message.id;
    }
    return list.length ? list[0].id : null;
  }

  roomLabel(room) {
    if (!room.isDm) return room.info.name;
    const peer = this.dmPeer(room);
    return peer ? personText(peer) : room.info.name;
  }

  /** The other person in a direct message room (a User, or {username} from the room's name). */
  dmPeer(room) {
    for (const user of room.members.values()) {
      if (user.id !== this.me.id) return this.person(user);
    }
    // Before the first join the members are unknown; DM rooms are named "a & b".
    const names = room.info.name.split(" & ");
    const other = names.find((name) => name !== this.me.username);
    return other ? { id: null, username: other } : null;
  }

  totalUnread() {
    let total = 0;
    for (const room of this.rooms.values()) if (room.member) total += room.unread;
    return total;
  }

  totalMentions() {
    let total = 0;
    for (const room of this.rooms.values()) if (room.member) total += room.mentionsUnread;
    return total;
  }

  /** An unread message mentions the reader (live, or an edit that added them): counted once. */
  countMention(room, messageId) {
    if (room.mentionIds.has(messageId)) return;
    room.mentionIds.add(messageId);
    room.mentionsUnread += 1;
    this.notify("rooms");
  }

  /** The server's counts after a read marker moved (`room:read`). */
  setReadCounts(room, { unread, mentions_unread: mentionsUnread }) {
    room.unread = unread;
    room.mentionsUnread = mentionsUnread ?? 0;
    room.mentionIds.clear();
    this.notify("rooms");
  }

  /** The reader's notification level for a room (`room:notify`, from any of their tabs). */
  setNotifyLevel(slug, level) {
    const room = this.rooms.get(slug);
    if (!room || room.notify === level) return;
    room.notify = level;
    this.notify("rooms");
  }

  // -- joining and pages --

  /**
   * A room:join answer. `catchUp`: it answers a `cursor` (its changes are
   * applied by the controller); otherwise, or when the server said `reset`
   * (the cursor was too old), its messages are the room's latest page.
   */
  applyJoin(slug, ack, { catchUp }) {
    const room = this.upsertRoom(ack.room);
    room.joined = true;
    this.learnPeople(ack.members);
    room.members = new Map(ack.members.map((user) => [user.id, this.person(user)]));
    room.online = new Set(ack.online.map((user) => user.id));
    if (ack.reset) {
      // What was missed is no longer kept: start the room over from this page.
      room.messages = new Map();
      room.sortedCache = null;
      if (this.editing && !room.messages.has(this.editing.id)) this.editing = null;
    }
    if (!catchUp || ack.reset) {
      room.hasOlder = ack.has_more;
      room.shownUpTo = null;
    }
    room.loaded = true;
    this.addMessages(room, ack.messages);
    if (this.activeSlug === slug && room.firstUnreadId === null) room.firstUnreadId = this.firstUnreadOf(room);
    this.notify("rooms");
    this.notify("room", slug);
    return room;
  }

  /** Add confirmed messages (from a page or live); true when one was new. */
  addMessages(room, messages) {
    let added = false;
    for (const message of messages) {
      if (message.user.id === this.me.id && room.pending.has(message.client_id)) {
        room.pending.delete(message.client_id);
        added = true;
      }
      const known = room.messages.get(message.id);
      if (known && !known.deleted) {
        // A page may carry a newer edit than what we hold.
        if (message.edited_at && message.edited_at !== known.edited_at) {
          room.messages.set(message.id, { ...message, reactions: heldReactions(message.reactions, known.reactions) });
          added = true;
        }
        continue;
      }
      if (known) continue;
      room.messages.set(message.id, { ...message, reactions: heldReactions(message.reactions) });
      room.maxId = Math.max(room.maxId, message.id);
      added = true;
    }
    if (added) room.sortedCache = null;
    return added;
  }

  /**
   * A `message:history` `around` answer: the room shows that page (older
   * ones load above as usual, newer ones below as the reader scrolls down).
   * What was loaded stays known, so that nothing is fetched twice, but is not
   * shown past the page until the newer pages join it up.
   */
  applyAround(slug, ack) {
    const room = this.room(slug);
    if (!room || !ack.ok) return;
    // The page replaces what was shown: the room is contiguous from its
    // first message to `shownUpTo`. Live messages still arrive and are kept
    // (not shown) until the newer pages reach them.
    room.messages = new Map();
    room.sortedCache = null;
    this.addMessages(room, ack.messages);
    room.hasOlder = ack.has_more;
    room.shownUpTo = ack.has_newer && ack.messages.length ? ack.messages[ack.messages.length - 1].id : null;
    room.firstUnreadId = null;
    room.newBelow = 0;
    room.loadingNewer = false;
    this.notify("room", slug);
  }

  /** A `message:history` `after` page below the one shown (`shownUpTo`). */
  addNewer(slug, after, ack) {
    const room = this.room(slug);
    // Stale: the room went back to its latest messages (or opened another
    // page) while this one was on its way.
    if (!room || room.shownUpTo !== after) return;
    room.loadingNewer = false;
    if (ack.ok) {
      this.addMessages(room, ack.messages);
      const last = ack.messages.length ? ack.messages[ack.messages.length - 1].id : room.shownUpTo;
      room.shownUpTo = ack.has_more ? last : null;
    }
    this.notify("room", slug);
  }

  /** Show the room to its latest message again: the live end, as when first opened. */
  showLatest(slug, ack) {
    const room = this.room(slug);
    if (!room || !ack.ok) return;
    const keep = ack.messages.length ? ack.messages[0].id : 0;
    room.messages = new Map([...room.messages].filter(([id]) => id >= keep));
    room.sortedCache = null;
    this.addMessages(room, ack.messages);
    room.hasOlder = ack.has_more;
    room.shownUpTo = null;
    room.loadingNewer = false;
    if (this.highlight?.slug === slug) this.highlight = null;
    this.notify("room", slug);
  }

  setHighlight(slug, id) {
    this.highlight = { slug, id, scrolled: false };
    this.notify("room", slug);
  }

  addOlder(slug, ack) {
    const room = this.room(slug);
    if (!room) return;
    room.loadingOlder = false;
    if (ack.ok) {
      room.hasOlder = ack.has_more;
      this.addMessages(room, ack.messages);
    }
    this.notify("room", slug);
  }

  // -- live events --

  /** A `message` event; answers whether it was new and by someone else. */
  receiveMessage(message) {
    const room = this.room(message.room);
    if (!room) return { room: null, fresh: false };
    const isNew = !room.messages.has(message.id);
    this.addMessages(room, [message]);
    const fromOther = message.user.id !== this.me.id;
    if (fromOther) this.stopTyping(room, message.user.id);
    this.notify("room", room.slug);
    return { room, fresh: isNew && fromOther };
  }

  updateMessage(message) {
    const room = this.room(message.room);
    const known = room?.messages.get(message.id);
    if (!known) return;
    // A live edit carries counts without `me` (the same for every reader): keep ours.
    room.messages.set(message.id, { ...message, reactions: heldReactions(message.reactions, known.reactions) });
    room.sortedCache = null;
    this.notify("room", room.slug);
  }

  deleteMessage(id, slug) {
    const room = this.room(slug);
    const message = room?.messages.get(id);
    if (!message) return;
    room.messages.set(id, { ...message, deleted: true, reactions: [] });
    // Replies to it quote it as deleted from now on, as history does.
    for (const other of room.messages.values()) {
      if (other.reply_to?.id === id && !other.reply_to.deleted) {
        room.messages.set(other.id, { ...other, reply_to: deletedQuote(id) });
      }
    }
    for (const pending of room.pending.values()) {
      if (pending.reply_to?.id === id) pending.reply_to = deletedQuote(id);
    }
    if (room.replyTo?.id === id) this.setReplyTo(slug, null);
    room.sortedCache = null;
    if (room.mentionIds.delete(id)) {
      room.mentionsUnread = Math.max(0, room.mentionsUnread - 1);
      this.notify("rooms");
    }
    if (this.editing?.id === id) this.editing = null;
    this.notify("room", slug);
  }

  /**
   * A `reaction:updated` change: `count` is exact after it; the reader's
   * own `me` changes only when the change is theirs.
   */
  applyReaction({ room: slug, id, emoji, user, added, count }) {
    const room = this.room(slug);
    const message = room?.messages.get(id);
    if (!message || message.deleted) return;
    const reactions = message.reactions.map((r) => ({ ...r }));
    let entry = reactions.find((r) => r.emoji === emoji);
    if (!entry && count > 0) {
      entry = { emoji, count, me: false };
      reactions.push(entry);
    }
    if (entry) {
      entry.count = count;
      if (user.id === this.me.id) entry.me = added;
    }
    room.messages.set(id, { ...message, reactions: reactions.filter((r) => r.count > 0) });
    room.sortedCache = null;
    this.notify("room", slug);
  }

  /** The composer answers `target` ({id, author, excerpt}) in room `slug`, or nothing (null). */
  setReplyTo(slug, target) {
    const room = this.room(slug);
    if (!room) return;
    room.replyTo = target;
    this.notify("reply", slug);
  }

  setPresence(slug, user, online) {
    const room = this.room(slug);
    if (!room) return;
    if (online) {
      this.learnPeople([user]);
      room.online.add(user.id);
      if (!room.members.has(user.id)) room.members.set(user.id, this.person(user));
    } else {
      room.online.delete(user.id);
    }
    this.notify("room", slug);
    if (room.isDm) this.notify("rooms");
  }

  /** A `presence:batch`: every member in `online` is online, every one in `offline` is not; one redraw. */
  setPresenceBatch(slug, online = [], offline = []) {
    const room = this.room(slug);
    if (!room) return;
    for (const user of online) {
      room.online.add(user.id);
      if (!room.members.has(user.id)) room.members.set(user.id, user);
    }
    for (const user of offline) room.online.delete(user.id);
    this.notify("room", slug);
    if (room.isDm) this.notify("rooms");
  }

  setTyping(slug, user, typing) {
    const room = this.room(slug);
    if (!room || user.id === this.me.id) return;
    this.stopTyping(room, user.id, false);
    if (typing) {
      const timer = setTimeout(() => this.stopTyping(room, user.id), TYPING_EXPIRY_MS);
      room.typing.set(user.id, { user, timer });
    }
    this.notify("typing", slug);
  }

  stopTyping(room, userId, notify = true) {
    const entry = room.typing.get(userId);
    if (!entry) return;
    clearTimeout(entry.timer);
    room.typing.delete(userId);
    if (notify) this.notify("typing", room.slug);
  }

  // -- pending messages --

  addPending(slug, pending) {
    const room = this.room(slug);
    room.pending.set(pending.client_id, pending);
    this.notify("room", slug);
  }

  updatePending(slug, clientId, changes) {
    const pending = this.room(slug)?.pending.get(clientId);
    if (!pending) return;
    Object.assign(pending, changes);
    this.notify("room", slug);
  }

  removePending(slug, clientId) {
    this.room(slug)?.pending.delete(clientId);
    this.notify("room", slug);
  }

  // -- the rest --

  setConnection(state, extra = {}) {
    this.connection = { state, attempt: 0, message: "", ...extra };
    this.notify("connection");
  }

  addAnnouncement(announcement) {
    // Kept announcements have an id: the same one arrives live and again in
    // `announcements:list` after every connect. One dismissed in this browser
    // stays dismissed (localStorage); an expired one is not shown.
    if (announcement.id != null && (dismissedAnnouncements().has(announcement.id)
        || this.announcements.some((a) => a.id === announcement.id))) return;
    if (isExpired(announcement)) return;
    this.announcementSeq += 1;
    this.announcements = [...this.announcements, { ...announcement, key: this.announcementSeq }].slice(-3);
    this.notify("announcements");
    if (announcement.expires_at) {
      const key = this.announcementSeq;
      // Timers are capped at about 24.8 days; a longer one is checked at the next load.
      const delay = Math.min(Date.parse(announcement.expires_at) - Date.now(), 2 ** 31 - 1);
      setTimeout(() => this.removeAnnouncement(key), delay);
    }
  }

  dismissAnnouncement(key) {
    const announcement = this.announcements.find((a) => a.key === key);
    if (announcement?.id != null) {
      const dismissed = dismissedAnnouncements();
      dismissed.add(announcement.id);
      // The newest few are enough to remember: older ones have left the server's list.
      const kept = [...dismissed].slice(-DISMISSED_KEPT);
      try { localStorage.setItem(DISMISSED_KEY, JSON.stringify(kept)); } catch { /* private mode: session only */ }
    }
    this.removeAnnouncement(key);
  }

  removeAnnouncement(key) {
    this.announcements = this.announcements.filter((a) => a.key !== key);
    this.notify("announcements");
  }

  setEditing(editing) {
    this.editing = editing;
    this.notify("room", this.activeSlug);
  }

  /** The reader's own most recent message in a room that can still be edited. */
  lastOwnMessage(room) {
    const list = room.sorted();
    for (let i = list.length - 1; i >= 0; i -= 1) {
      if (list[i].user.id === this.me.id && !list[i].deleted) return list[i];
    }
    return null;
  }
}

// The chat page's state: rooms, their messages, members and presence.
//
// One store, changed only through its methods; each change notifies the
// views with what changed (`rooms`, `room` + slug, `typing` + slug, `active`,
// `connection`, `announcements`, `ready`). Messages are kept by id, so a message that
// arrives twice (live, then again in a catch-up page) is shown once, and
// pending messages by `client_id` until the server confirms them. Each room
// keeps the cursor of the last change it applied (its position in the
// room's change log); a change at or below it is a duplicate.

/** How long a "typing" notice lasts without a refresh (the typist resends every few seconds). */
const TYPING_EXPIRY_MS = 6000;

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
    this.info = info;               // the server's Room object, without `unread`
    this.member = false;
    this.unread = 0;
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
    this.cursor = null;             // the last change-log position applied; null before a first join
    this.catchingUp = false;        // a join or catch-up is in flight: live changes wait in `held`
    this.held = [];                 // [{event, data}] live changes that arrived meanwhile
    this.firstUnreadId = null;      // where the "new" line goes while the room is open
    this.newBelow = 0;              // messages that arrived while the reader was scrolled up
    this.draft = "";
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
    this.me = me;                   // {id, username, isAdmin}
    this.rooms = new Map();         // slug -> Room
    this.activeSlug = null;
    this.connection = { state: "connecting", attempt: 0, message: "" };
    this.announcements = [];
    this.editing = null;            // {id, draft, error, saving}
    this.atBottom = true;
    this.announcementSeq = 0;
  }

  notify(what, slug = null) {
    this.dispatchEvent(new CustomEvent("change", { detail: { what, slug } }));
  }

  // -- rooms --

  room(slug) { return this.rooms.get(slug) || null; }
  activeRoom() { return this.activeSlug ? this.room(this.activeSlug) : null; }
  memberRooms() { return [...this.rooms.values()].filter((room) => room.member); }

  /** Add or refresh a room from a server Room object. */
  upsertRoom(info) {
    const { unread, ...rest } = info;
    let room = this.rooms.get(info.slug);
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
    }
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
      room.members.set(user.id, user);
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

  forgetMembership(slug) {
    const room = this.room(slug);
    if (!room) return;
    room.member = false;
    room.joined = false;
    room.unread = 0;
    if (room.info.private) this.rooms.delete(slug);
    if (this.activeSlug === slug) {
      this.activeSlug = null;
      this.notify("active");
    }
    this.notify("rooms");
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
    return peer ? peer.username : room.info.name;
  }

  /** The other person in a direct message room (a User, or {username} from the room's name). */
  dmPeer(room) {
    for (const user of room.members.values()) {
      if (user.id !== this.me.id) return user;
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

  // -- joining and pages --

  /**
   * A room:join answer. `catchUp`: it answers a `cursor` (its changes are
   * applied by the controller); otherwise, or when the server said `reset`
   * (the cursor was too old), its messages are the room's latest page.
   */
  applyJoin(slug, ack, { catchUp }) {
    const room = this.upsertRoom(ack.room);
    room.joined = true;
    room.members = new Map(ack.members.map((user) => [user.id, user]));
    room.online = new Set(ack.online.map((user) => user.id));
    if (ack.reset) {
      // What was missed is no longer kept: start the room over from this page.
      room.messages = new Map();
      room.sortedCache = null;
      if (this.editing && !room.messages.has(this.editing.id)) this.editing = null;
    }
    if (!catchUp || ack.reset) room.hasOlder = ack.has_more;
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
          room.messages.set(message.id, { ...message });
          added = true;
        }
        continue;
      }
      if (known) continue;
      room.messages.set(message.id, { ...message });
      room.maxId = Math.max(room.maxId, message.id);
      added = true;
    }
    if (added) room.sortedCache = null;
    return added;
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
    if (!room || !room.messages.has(message.id)) return;
    room.messages.set(message.id, { ...message });
    room.sortedCache = null;
    this.notify("room", room.slug);
  }

  deleteMessage(id, slug) {
    const room = this.room(slug);
    const message = room?.messages.get(id);
    if (!message) return;
    room.messages.set(id, { ...message, deleted: true });
    room.sortedCache = null;
    if (this.editing?.id === id) this.editing = null;
    this.notify("room", slug);
  }

  setPresence(slug, user, online) {
    const room = this.room(slug);
    if (!room) return;
    if (online) {
      room.online.add(user.id);
      if (!room.members.has(user.id)) room.members.set(user.id, user);
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

// What the chat page does over the socket: the connection's life, catch-up
// after a reconnect, and every user action (send, edit, join...).
//
// The views call these methods and read the store; only this module talks
// to the server.

import { call } from "../lib/socket.js";
import { fullDateTime, parseTime } from "../lib/format.js";
import { personText } from "../lib/people.js";
import { mentionsMe } from "./mentions.js";

/** The first page of a room; older messages are fetched as the reader scrolls up. */
const FIRST_PAGE = 50;
const OLDER_PAGE = 50;
/** A search result opens its room on this many messages around it. */
const AROUND_PAGE = 50;
const NEWER_PAGE = 50;
/** Catch-up pages are as large as the contract allows: fewer round trips after a long gap. */
const CATCH_UP_PAGE = 500;
/** The events a room's change log carries: each has a `cursor` and arrives live or in catch-up. */
const ROOM_CHANGES = ["message", "message:updated", "message:deleted", "reaction:updated",
  "room:updated", "room:archived", "member:added", "member:removed"];
/** Jumping to a quoted original loads older pages this large, at most this many. */
const REVEAL_PAGE = 500;
const REVEAL_PAGES = 4;
/** A typist tells the room again this often, and "stopped" after this long without a key. */
const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 4000;
/** After a failed catch-up, the next try comes this much later. */
const SYNC_RETRY_MS = 2000;
/** Read markers move at most this often: one `room:read` for a burst of messages. */
const READ_DELAY_MS = 400;

/** What a banned user reads: that it is a ban, until when, and why (`kicked` or connect_error data). */
export function banMessage({ until, reason }) {
  const span = until ? `until ${fullDateTime(parseTime(until))}` : "until an administrator lifts the ban";
  // A ban without a reason sends `kicked` with the reason "banned": nothing to add.
  const why = reason && reason !== "banned" ? ` Reason: ${reason}` : "";
  return `Your account is banned ${span}.${why}`;
}

export function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context; plain http on a LAN address is not one.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export class ChatController {
  constructor(store, socket, { loginUrl, onFirstSync } = {}) {
    this.store = store;
    this.socket = socket;
    this.loginUrl = loginUrl || "/login";
    this.onFirstSync = onFirstSync;
    this.generation = 0;            // bumps on every (re)connect; stale async work stops
    this.synced = false;
    this.kicked = null;
    this.readTimers = new Map();
    this.typingState = { slug: null, sentAt: 0, idleTimer: null };
    this.onNotice = null;           // (text) => void: set by the page to show a short notice
  }

  notice(text) {
    this.onNotice?.(text);
  }

  start() {
    const { socket, store } = this;
    socket.on("connect", () => this.onConnect());
    socket.on("connect", () => this.loadAnnouncements());
    socket.on("disconnect", (reason) => this.onDisconnect(reason));
    socket.on("connect_error", (err) => this.onConnectError(err));
    socket.io.on("reconnect_attempt", (attempt) => {
      if (store.connection.state !== "failed") store.setConnection("reconnecting", { attempt });
    });

    for (const name of ROOM_CHANGES) socket.on(name, (data) => this.onRoomChange(name, data));
    socket.on("presence", ({ room, user, online }) => store.setPresence(room, user, online));
    socket.on("presence:batch", ({ room, online, offline }) => store.setPresenceBatch(room, online, offline));
    socket.on("typing", ({ room, user, typing }) => store.setTyping(room, user, typing));
    socket.on("announcement", (announcement) => store.addAnnouncement(announcement));
    socket.on("room:added", ({ room }) => this.onRoomAdded(room));
    socket.on("room:removed", (data) => this.onRemoved(data));
    socket.on("room:deleted", (data) => this.onDeleted(data));
    socket.on("user:updated", ({ user }) => store.updateUser(user));
    socket.on("mention", ({ room, message }) => this.onMention(room, message));
    socket.on("room:notify", ({ room, notify }) => store.setNotifyLevel(room, notify));
    socket.on("kicked", (notice) => { this.kicked = notice || {}; });

    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && store.activeSlug) this.scheduleRead(store.activeSlug);
    });
  }

  // -- the connection --

  async onConnect() {
    const generation = ++this.generation;
    this.kicked = null;
    this.store.setConnection("syncing");
    let ok = await this.syncAll(generation);
    while (!ok && generation === this.generation) {
      // The room list did not come (a timeout under load): try again shortly.
      await new Promise((resolve) => { setTimeout(resolve, SYNC_RETRY_MS); });
      if (generation === this.generation) ok = await this.syncAll(generation);
    }
    if (generation !== this.generation) return;
    this.store.setConnection("online");
    if (!this.synced) {
      this.synced = true;
      this.onFirstSync?.();
    }
    await this.flushPending(generation);
  }

  /** What was announced while this page was away or before a reload (`announcements:list`). */
  async loadAnnouncements() {
    const ack = await call(this.socket, "announcements:list", {});
    if (ack.ok) for (const announcement of ack.announcements) this.store.addAnnouncement(announcement);
  }

  onDisconnect(reason) {
    this.generation += 1;
    for (const room of this.store.rooms.values()) {
      room.joined = false;
      room.catchingUp = false;
      room.held = [];
      for (const pending of room.pending.values()) {
        if (pending.status === "sending") pending.status = "queued";
      }
      for (const userId of [...room.typing.keys()]) this.store.stopTyping(room, userId);
    }
    if (reason === "io client disconnect") return;
    if (this.kicked !== null) {
      // A ban is not a kick: there is nothing to reconnect to until it ends.
      this.store.setConnection("failed", this.kicked.banned
        ? { message: banMessage(this.kicked), canRetry: false }
        : { message: `You were disconnected by an administrator: ${this.kicked.reason || "no reason given"}`,
            canRetry: true });
      return;
    }
    this.store.setConnection("reconnecting", { attempt: 0 });
    if (reason === "io server disconnect") {
      // The server closed this connection on purpose (a sign-out elsewhere,
      // a restart of the namespace): socket.io does not retry by itself. One
      // try tells whether the session is still good (connect_error if not).
      setTimeout(() => this.socket.connect(), 1000);
    }
    this.store.notify("rooms");
  }

  onConnectError(err) {
    const code = err?.data?.code;
    if (code === "unauthenticated") {
      window.location.assign(this.loginUrl);
      return;
    }
    if (code === "forbidden" && err.data.banned) {
      this.store.setConnection("failed", { message: banMessage(err.data), canRetry: false });
      return;
    }
    if (code === "forbidden") {
      this.store.setConnection("failed", { message: err.message || "This account may not chat right now.", canRetry: true });
      return;
    }
    // A network failure: the client keeps retrying on its own.
    if (this.store.connection.state !== "failed") {
      this.store.setConnection("reconnecting", { attempt: this.store.connection.attempt });
    }
  }

  reconnect() {
    this.store.setConnection("reconnecting", { attempt: 0 });
    this.socket.connect();
  }

  /**
   * Everything a (re)connected page needs: the room list, then every member
   * room joined again with its `cursor` (the last change applied): the
   * server answers every change since (new messages, edits, deletions,
   * topic, members), paging on with `message:history` `cursor` until
   * nothing more follows.
   */
  async syncAll(generation) {
    const { store } = this;
    const list = await call(this.socket, "rooms:list", {});
    if (generation !== this.generation) return false;
    if (!list.ok) return false;
    store.replaceRooms(list.rooms);
    const rooms = store.memberRooms();
    // The open room first: it is what the reader is looking at.
    rooms.sort((a, b) => (b.slug === store.activeSlug) - (a.slug === store.activeSlug));
    const [first, ...rest] = rooms;
    if (first) await this.joinRoom(first.slug, generation);
    await Promise.all(rest.map((room) => this.joinRoom(room.slug, generation)));
    return generation === this.generation;
  }

  /**
   * Join a room on this connection. A room already shown catches up from
   * its cursor; a new one loads its latest page. Live changes that arrive
   * while the answer is on its way are held, then applied after it unless
   * the answer already covered them (their cursor is not past the room's).
   */
  async joinRoom(slug, generation = this.generation) {
    const { store } = this;
    const known = store.room(slug);
    const catchUp = Boolean(known?.loaded && known.cursor !== null);
    if (known) {
      known.catchingUp = true;
      known.held = [];
    }
    const payload = catchUp
      ? { room: slug, cursor: known.cursor, limit: CATCH_UP_PAGE }
      : { room: slug, limit: FIRST_PAGE };
    const ack = await call(this.socket, "room:join", payload);
    if (generation !== this.generation) return ack;
    if (!ack.ok) {
      if (known) this.releaseHeld(known);
      if (ack.error.code === "not_found" || ack.error.code === "forbidden") store.forgetMembership(slug);
      return ack;
    }
    const room = store.applyJoin(slug, ack, { catchUp });
    let page = ack;
    for (;;) {
      for (const change of page.changes || []) this.applyChange(room, change.event, change.data, { live: false });
      room.cursor = Math.max(room.cursor ?? 0, page.cursor);
      if (!(catchUp && !page.reset && page.has_more)) break;
      page = await call(this.socket, "message:history", { room: slug, cursor: room.cursor, limit: CATCH_UP_PAGE });
      if (generation !== this.generation) return ack;
      if (!page.ok) break;
      if (page.reset) {
        store.applyJoin(slug, { ...ack, ...page }, { catchUp: false });
        room.cursor = page.cursor;
        break;
      }
    }
    this.releaseHeld(room);
    store.notify("room", slug);
    if (slug === store.activeSlug) this.scheduleRead(slug);
    return ack;
  }

  /** The join is answered: apply what arrived live meanwhile, past the room's cursor. */
  releaseHeld(room) {
    const held = room.held;
    room.held = [];
    room.catchingUp = false;
    held.sort((a, b) => a.data.cursor - b.data.cursor);
    for (const { event, data } of held) this.onRoomChange(event, data);
  }

  /** A live change of a room: held during its catch-up, dropped when already applied. */
  onRoomChange(event, data) {
    const room = this.store.room(data.room);
    if (!room) return;
    if (room.catchingUp) {
      room.held.push({ event, data });
      return;
    }
    if (room.cursor !== null && data.cursor <= room.cursor) return;
    this.applyChange(room, event, data, { live: true });
    room.cursor = Math.max(room.cursor ?? 0, data.cursor);
  }

  /**
   * One change of a room, live or from catch-up. Messages that arrive in a
   * catch-up are already in the room's `unread` (the join answer's count),
   * so only live ones count as arrivals.
   */
  applyChange(room, event, data, { live }) {
    const { store } = this;
    switch (event) {
      case "message":
        if (live) {
          const { fresh } = store.receiveMessage(data);
          if (fresh) this.countArrival(room, data);
        } else if (store.addMessages(room, [data])) {
          store.notify("room", room.slug);
        }
        break;
      case "message:updated": store.updateMessage(data); break;
      case "message:deleted": store.deleteMessage(data.id, data.room); break;
      case "reaction:updated": store.applyReaction(data); break;
      case "room:updated": store.updateRoomInfo(data.room, data); break;
      case "room:archived": store.setArchived(data.room, data.archived); break;
      case "member:added": store.setMember(data.room, data.user, true); break;
      case "member:removed":
        if (data.user.id !== store.me.id) store.setMember(data.room, data.user, false);
        break;
      default: break;
    }
  }

  // -- reading --

  selectRoom(slug) {
    const { store } = this;
    const room = store.room(slug);
    if (!room?.member) return false;
    this.stopTyping();
    store.setActive(slug);
    this.scheduleRead(slug);
    return true;
  }

  /** A message by someone else arrived in `room`: count it unless it is being read now. */
  countArrival(room, message) {
    const { store } = this;
    if (room.slug === store.activeSlug && this.isReading()) {
      this.scheduleRead(room.slug);
      return;
    }
    room.unread += 1;
    if (mentionsMe(message, store.me.id)) store.countMention(room, message.id);
    if (room.slug === store.activeSlug) room.newBelow += 1;
    store.notify("rooms");
    store.notify("room", room.slug);
  }

  isReading() {
    return document.visibilityState === "visible" && this.store.atBottom;
  }

  /** The reader reached the bottom of the open room. */
  caughtUp() {
    const room = this.store.activeRoom();
    if (!room) return;
    if (room.newBelow) {
      room.newBelow = 0;
      this.store.notify("room", room.slug);
    }
    this.scheduleRead(room.slug);
  }

  scheduleRead(slug) {
    if (this.readTimers.has(slug)) return;
    this.readTimers.set(slug, setTimeout(() => {
      this.readTimers.delete(slug);
      this.markRead(slug);
    }, READ_DELAY_MS));
  }

  async markRead(slug) {
    const { store } = this;
    const room = store.room(slug);
    if (!room?.joined || slug !== store.activeSlug || !this.isReading()) return;
    // Reading an older page (a search result) is not reading the latest.
    if (room.shownUpTo !== null) return;
    if (!room.unread && room.readUpTo === room.maxId) return;
    const upTo = room.maxId;
    const ack = await call(this.socket, "room:read", { room: slug, last_read_id: upTo });
    if (!ack.ok) return;
    room.readUpTo = upTo;
    store.setReadCounts(room, ack);
  }

  /**
   * `mention`: a message mentions the reader. A new message was counted on
   * arrival (its room is joined); an edit that added the reader is counted
   * here, unless it is being read now or was read already.
   */
  onMention(slug, message) {
    const room = this.store.room(slug);
    if (!room?.member || !message.edited_at || message.id <= room.readUpTo) return;
    if (slug === this.store.activeSlug && this.isReading()) return;
    this.store.countMention(room, message.id);
  }

  /** The reader's notification level for a room: all, mentions or none. */
  async setNotifyLevel(slug, level) {
    const ack = await call(this.socket, "room:notify", { room: slug, level });
    if (ack.ok) this.store.setNotifyLevel(ack.room, ack.notify);
    return ack;
  }

  async loadOlder(slug) {
    const room = this.store.room(slug);
    if (!room || !room.hasOlder || room.loadingOlder || !room.joined) return;
    room.loadingOlder = true;
    this.store.notify("room", slug);
    const before = room.oldestId();
    const payload = before === null ? { room: slug, limit: OLDER_PAGE } : { room: slug, before, limit: OLDER_PAGE };
    const ack = await call(this.socket, "message:history", payload);
    this.store.addOlder(slug, ack);
  }

  /** Below an older page (a search result opened): the next newer page. */
  async loadNewer(slug) {
    const room = this.store.room(slug);
    if (!room || room.shownUpTo === null || room.loadingNewer || !room.joined) return;
    room.loadingNewer = true;
    this.store.notify("room", slug);
    const after = room.shownUpTo;
    const ack = await call(this.socket, "message:history", { room: slug, after, limit: NEWER_PAGE });
    this.store.addNewer(slug, after, ack);
  }

  /** Leave an older page for the room's latest messages ("Jump to the latest"). */
  async showLatest(slug) {
    const room = this.store.room(slug);
    if (!room || room.shownUpTo === null) return;
    const ack = await call(this.socket, "message:history", { room: slug, limit: FIRST_PAGE });
    this.store.showLatest(slug, ack);
  }

  // -- search --

  /** `message:search`: a page of results (`cursor` from the previous page's `next`). */
  searchMessages(payload) {
    return call(this.socket, "message:search", payload);
  }

  /**
   * Open a search result: its room (joining a public one the reader is not
   * in), at the message, highlighted. A message not loaded yet brings the
   * page around it (`message:history` `around`).
   */
  async openMessage(slug, id) {
    const { store } = this;
    let room = store.room(slug);
    if (!room?.member || !room.joined) {
      const ack = await this.joinRoom(slug);
      if (!ack.ok) return ack;
      room = store.room(slug);
    }
    const shown = room.messages.has(id) && (room.shownUpTo === null || id <= room.shownUpTo);
    if (!shown) {
      const ack = await call(this.socket, "message:history", { room: slug, around: id, limit: AROUND_PAGE });
      if (!ack.ok) return ack;
      store.applyAround(slug, ack);
    }
    this.selectRoom(slug);
    store.setHighlight(slug, id);
    return { ok: true };
  }

  // -- writing --

  /**
   * Show the message at once as pending, then send it; the ack confirms it.
   * `replyTo` ({id, author, excerpt}): the message it answers.
   */
  send(slug, body, replyTo = null) {
    const pending = {
      client_id: newClientId(),
      body,
      reply_to: replyTo ? { ...replyTo, deleted: false } : null,
      created_at: new Date().toISOString(),
      status: "sending",
      error: null,
      attempt: 0,
    };
    this.store.addPending(slug, pending);
    this.stopTyping();
    // Written while an older page is shown (a search result): back to the
    // latest messages, where this one will be.
    if (this.store.room(slug)?.shownUpTo !== null) this.showLatest(slug);
    this.transmit(slug, pending.client_id);
  }

  /** Send (or send again) a pending message. The same client_id never stores it twice. */
  async transmit(slug, clientId) {
    const { store } = this;
    const pending = store.room(slug)?.pending.get(clientId);
    if (!pending) return;
    if (!this.socket.connected || store.connection.state !== "online") {
      store.updatePending(slug, clientId, { status: "queued", error: null });
      return;
    }
    const attempt = pending.attempt + 1;
    store.updatePending(slug, clientId, { status: "sending", error: null, attempt });
    const payload = { room: slug, body: pending.body, client_id: clientId };
    if (pending.reply_to) payload.reply_to = pending.reply_to.id;
    const ack = await call(this.socket, "message:send", payload);
    const current = store.room(slug)?.pending.get(clientId);
    if (current !== pending || pending.attempt !== attempt) return; // confirmed or resent meanwhile
    if (ack.ok) {
      store.receiveMessage(ack.message);
    } else if (ack.error.code === "offline") {
      store.updatePending(slug, clientId, { status: "queued" });
    } else {
      store.updatePending(slug, clientId, { status: "failed", error: ack.error });
    }
  }

  retry(slug, clientId) {
    this.transmit(slug, clientId);
  }

  discard(slug, clientId) {
    this.store.removePending(slug, clientId);
  }

  /** After a reconnect: send what was written while offline, in order. */
  async flushPending(generation) {
    for (const room of this.store.rooms.values()) {
      const queued = [...room.pending.values()].filter((p) => p.status === "queued");
      for (const pending of queued) {
        if (generation !== this.generation) return;
        await this.transmit(room.slug, pending.client_id);
      }
    }
  }

  async edit(id, body) {
    const ack = await call(this.socket, "message:edit", { id, body });
    if (ack.ok) this.store.updateMessage(ack.message);
    return ack;
  }

  /**
   * Add or take back the reader's `emoji` on a message. The room's
   * `reaction:updated` (which reaches this page too) changes what is shown.
   */
  react(id, emoji, mine) {
    return call(this.socket, mine ? "reaction:remove" : "reaction:add", { id, emoji });
  }

  /**
   * Make sure message `id` of room `slug` is loaded, fetching older pages
   * until it is (at most REVEAL_PAGES of REVEAL_PAGE). Answers whether it is
   * there and live: the loaded messages are contiguous, so an id inside
   * their range that is not held was deleted.
   */
  async reveal(slug, id) {
    const { store } = this;
    const room = store.room(slug);
    for (let pages = 0; room && !room.messages.has(id) && room.hasOlder && room.joined; pages += 1) {
      const before = room.oldestId();
      if (pages === REVEAL_PAGES || (before !== null && id > before)) break;
      room.loadingOlder = true;
      store.notify("room", slug);
      const ack = await call(this.socket, "message:history",
        before === null ? { room: slug, limit: REVEAL_PAGE } : { room: slug, before, limit: REVEAL_PAGE });
      store.addOlder(slug, ack);
      if (!ack.ok) break;
    }
    const message = room?.messages.get(id);
    return Boolean(message && !message.deleted);
  }

  async remove(id) {
    const ack = await call(this.socket, "message:delete", { id });
    if (ack.ok) {
      const room = [...this.store.rooms.values()].find((r) => r.messages.has(id));
      if (room) this.store.deleteMessage(id, room.slug);
    }
    return ack;
  }

  /** Composer keystrokes: tell the room now and then, and "stopped" after a pause. */
  typed(slug) {
    const state = this.typingState;
    const now = Date.now();
    if (state.slug !== slug) {
      this.stopTyping();
      state.slug = slug;
      state.sentAt = 0;
    }
    if (now - state.sentAt > TYPING_REFRESH_MS && this.socket.connected) {
      this.socket.emit("typing", { room: slug, typing: true });
      state.sentAt = now;
    }
    clearTimeout(state.idleTimer);
    state.idleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    const state = this.typingState;
    clearTimeout(state.idleTimer);
    if (state.slug && state.sentAt && this.socket.connected) {
      this.socket.emit("typing", { room: state.slug, typing: false });
    }
    state.slug = null;
    state.sentAt = 0;
  }

  // -- rooms --

  async listRooms() {
    const ack = await call(this.socket, "rooms:list", {});
    if (ack.ok) {
      for (const info of ack.rooms) this.store.upsertRoom(info);
      this.store.notify("rooms");
    }
    return ack;
  }

  async createRoom(name, topic, isPrivate) {
    const ack = await call(this.socket, "room:create", { name, topic, private: isPrivate });
    if (!ack.ok) return ack;
    this.store.upsertRoom(ack.room);
    return this.enter(ack.room.slug);
  }

  /** Join a room (becoming a member of a public one) and open it. */
  async enter(slug) {
    const ack = await this.joinRoom(slug);
    if (ack.ok) this.selectRoom(slug);
    return ack;
  }

  async leave(slug) {
    const ack = await call(this.socket, "room:leave", { room: slug });
    if (ack.ok) this.store.forgetMembership(slug);
    return ack;
  }

  invite(slug, username) {
    return call(this.socket, "room:invite", { room: slug, user: username });
  }

  /** Usernames starting with `query`, to complete a username being typed. */
  searchUsers(query) {
    return call(this.socket, "users:search", { query, limit: 8 });
  }

  async openDm(username) {
    const ack = await call(this.socket, "dm:open", { user: username });
    if (!ack.ok) return ack;
    this.store.upsertRoom(ack.room);
    return this.enter(ack.room.slug);
  }

  /** The owner or an admin renamed the room or changed its topic (`room:update`). */
  async updateRoom(slug, name, topic) {
    const ack = await call(this.socket, "room:update", { room: slug, name, topic });
    if (ack.ok) this.store.updateRoomInfo(slug, ack.room);
    return ack;
  }

  /** The owner or an admin removes someone from the room (`room:remove`). */
  async removeMember(slug, user) {
    const ack = await call(this.socket, "room:remove", { room: slug, user: user.username });
    if (ack.ok) this.store.setMember(slug, user, false);
    return ack;
  }

  /** The owner or an admin deletes the room with its messages (`room:delete`). */
  async deleteRoom(slug) {
    const ack = await call(this.socket, "room:delete", { room: slug });
    if (ack.ok) this.store.forgetRoom(slug);
    return ack;
  }

  /** `room:removed`: the reader was removed from a room; a private one disappears. */
  onRemoved({ room: slug, by }) {
    const room = this.store.room(slug);
    if (!room) return;
    const label = this.store.roomLabel(room);
    this.store.forgetMembership(slug);
    this.notice(`${by ? personText(this.store.person(by)) : "An administrator"} removed you from ${label}.`);
  }

  /** `room:deleted`: the room is gone, with its messages. */
  onDeleted({ room: slug, by }) {
    const room = this.store.room(slug);
    if (!room) return;
    const wasMember = room.member;
    const label = this.store.roomLabel(room);
    this.store.forgetRoom(slug);
    if (wasMember && by?.id !== this.store.me.id) {
      this.notice(`${by ? personText(this.store.person(by)) : "An administrator"} deleted ${label}.`);
    }
  }

  /** Someone invited the reader, or opened a direct message with them. */
  async onRoomAdded(info) {
    this.store.upsertRoom(info);
    this.store.notify("rooms");
    await this.joinRoom(info.slug);
  }
}

// The open room's header (name, topic, actions), the connection banner and
// admin announcements.

import { fill, h, icon } from "../lib/dom.js";
import { timeOfDay, parseTime } from "../lib/format.js";

/** Show "reconnecting" only for drops longer than this: a blink is not news. */
const BANNER_DELAY_MS = 600;

export function mountHeader(store, controller) {
  const title = document.getElementById("room-title");
  const topic = document.getElementById("room-topic");
  const actions = document.getElementById("room-actions");
  const inviteButton = document.getElementById("invite-button");
  const leaveButton = document.getElementById("leave-button");
  const settingsButton = document.getElementById("settings-button");
  const memberCount = document.getElementById("member-count");
  const banner = document.getElementById("connection-banner");
  const bannerText = document.getElementById("connection-text");
  const reconnectButton = document.getElementById("reconnect-button");
  const announcements = document.getElementById("announcements");
  let bannerTimer = null;

  function renderRoom() {
    const room = store.activeRoom();
    actions.hidden = !room;
    if (!room) {
      title.replaceChildren("Parley");
      topic.textContent = "";
      return;
    }
    const label = store.roomLabel(room);
    fill(title,
      icon(room.isDm ? "users" : room.archived ? "archive" : room.info.private ? "lock" : "hash"),
      h("span", null, label),
      room.info.private && !room.isDm ? h("span", { class: "visually-hidden" }, " (private room)") : null,
      room.archived ? h("span", { class: "tag" }, "archived") : null);
    topic.textContent = room.isDm ? "Direct message" : room.info.topic || "";
    topic.title = topic.textContent;
    inviteButton.hidden = room.isDm || room.archived;
    leaveButton.hidden = room.isDm;
    settingsButton.hidden = !store.canManage(room);
    const count = room.members.size || room.info.member_count;
    memberCount.textContent = String(count);
  }

  function renderConnection() {
    const { state, attempt, message, canRetry } = store.connection;
    clearTimeout(bannerTimer);
    if (state === "online") {
      banner.hidden = true;
      return;
    }
    const show = () => {
      banner.classList.toggle("connection-banner--fatal", state === "failed");
      reconnectButton.hidden = !(state === "failed" && canRetry);
      if (state === "failed") {
        bannerText.textContent = message;
      } else if (state === "reconnecting") {
        bannerText.textContent = attempt > 1
          ? `Connection lost. Reconnecting (attempt ${attempt})… Messages you write are sent once it is back.`
          : "Connection lost. Reconnecting… Messages you write are sent once it is back.";
      } else if (state === "syncing") {
        bannerText.textContent = "Connected. Catching up on missed messages…";
      } else {
        bannerText.textContent = "Connecting…";
      }
      banner.hidden = false;
    };
    if (state === "failed" || state === "reconnecting") show();
    else bannerTimer = setTimeout(show, BANNER_DELAY_MS);
  }

  function renderAnnouncements() {
    fill(announcements, store.announcements.map((announcement) => {
      const room = announcement.room ? store.room(announcement.room) : null;
      const where = announcement.room ? ` in ${room ? store.roomLabel(room) : announcement.room}` : "";
      const at = timeOfDay(parseTime(announcement.created_at));
      return h("div", { class: "announcement", role: "note" },
        icon("megaphone"),
        h("p", { class: "announcement-text" },
          h("span", { class: "announcement-label" }, `Announcement${where} · ${at}`),
          announcement.body),
        h("button", {
          type: "button", class: "icon-button", "aria-label": "Dismiss the announcement",
          onclick: () => store.dismissAnnouncement(announcement.key),
        }, icon("close")));
    }));
  }

  reconnectButton.addEventListener("click", () => controller.reconnect());

  store.addEventListener("change", ({ detail }) => {
    if (detail.what === "active" || detail.what === "rooms"
      || (detail.what === "room" && detail.slug === store.activeSlug)) renderRoom();
    else if (detail.what === "connection") renderConnection();
    else if (detail.what === "announcements") renderAnnouncements();
  });
  renderRoom();
  renderConnection();
}

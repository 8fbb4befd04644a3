// How the page names a person. A display name is the user's own choice and
// not unique, so it is never shown alone: the username (unique, and what
// @-mentions, DMs and invitations use) always goes beside it. Display names
// are drawn inside <bdi>, so a right-to-left name cannot reorder the
// username next to it (the server also refuses direction controls).

import { h } from "./dom.js";

/** The name to sort and search by: the display name when there is one. */
export function shownName(user) {
  return user.display_name || user.username;
}

/** One line of plain text: "Alice Smith (@alice)", or "alice" without a display name. */
export function personText(user) {
  return user.display_name ? `${user.display_name} (@${user.username})` : user.username;
}

/**
 * A person's name as an element: the display name, then "@username" in a
 * quieter style ("Alice Smith @alice"); the username alone without one.
 * The tooltip says the same in one line.
 */
export function personName(user, className = "person") {
  // A username is plain ASCII letters, digits and ". _ -": no isolation needed.
  if (!user.display_name) return h("span", { class: className, title: user.username }, user.username);
  return h("span", { class: className, title: personText(user) },
    h("bdi", { class: "person-main" }, user.display_name), " ",
    h("span", { class: "person-username" }, `@${user.username}`));
}

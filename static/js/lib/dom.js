// DOM helpers shared by Parley's pages.
//
// Everything a user wrote reaches the page as text: `h` sets text with
// text nodes and `textContent`, never through HTML parsing, so a message
// containing markup shows the markup instead of running it.

const SVG_NS = "http://www.w3.org/2000/svg";
// The sprite is inline in pages built on base.html; elsewhere, the file.
const ICON_SPRITE = document.getElementById("parley-icons") ? ""
  : document.body?.dataset.icons || "/static/img/icons.svg";

/**
 * Create an element: h("button", {class: "x", onclick: fn}, "label", child).
 * Props: `class`, `text`, `dataset` (object), `on<event>` listeners, boolean
 * properties (`hidden`, `disabled`), anything else as an attribute.
 * Children: nodes, strings (as text), arrays, null/false (skipped).
 */
/**
 * A function that runs `fn` once, in a microtask, however many times it is
 * called before then: many store changes in one event make one render.
 */
export function coalesced(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      fn();
    });
  };
}

export function h(tag, props = null, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
      else if (value === true) el.setAttribute(key, "");
      else el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

/** Replace `parent`'s children; same child rules as `h` (null and false are skipped). */
export function fill(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
  return parent;
}

function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.append(child);
    else parent.append(document.createTextNode(String(child)));
  }
}

/** An icon from static/img/icons.svg; decoration only (aria-hidden). */
export function icon(name, extraClass = "") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", extraClass ? `icon ${extraClass}` : "icon");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const use = document.createElementNS(SVG_NS, "use");
  use.setAttribute("href", `${ICON_SPRITE}#${name}`);
  svg.append(use);
  return svg;
}

/** One of eight avatar colours, stable for a username. */
export function avatarColour(username) {
  let hash = 0;
  for (const char of username) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return `avatar--c${hash % 8}`;
}

export function initial(username) {
  const first = [...(username || "?")][0];
  return first.toUpperCase();
}

/**
 * A user's avatar: initials on their colour. `online` (true/false) adds the
 * presence dot; leave it undefined for none.
 */
export function avatar(username, { small = false, online } = {}) {
  const el = h("span", {
    class: `avatar ${avatarColour(username)}${small ? " avatar--small" : ""}`,
    "aria-hidden": "true",
  }, initial(username));
  if (online !== undefined) el.dataset.online = String(Boolean(online));
  return el;
}

/** Fill server-rendered `<span data-avatar="name">` placeholders. */
export function hydrateAvatars(root = document) {
  for (const el of root.querySelectorAll("[data-avatar]")) {
    el.classList.add(avatarColour(el.dataset.avatar));
    el.textContent = initial(el.dataset.avatar);
  }
}

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING_PUNCTUATION = /[.,;:!?'")\]}]+$/;

/**
 * Text with its web addresses as links, as a fragment of text nodes and
 * <a> elements. Only http(s) addresses become links; the link text is the
 * address itself, set as text.
 */
export function linkified(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let address = match[0];
    const trailing = address.match(TRAILING_PUNCTUATION);
    // "(see https://x.org/a_(b))" keeps a balanced closing parenthesis.
    if (trailing && !(trailing[0] === ")" && address.includes("("))) {
      address = address.slice(0, -trailing[0].length);
    }
    let url;
    try {
      url = new URL(address);
    } catch {
      continue;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") continue;
    fragment.append(document.createTextNode(text.slice(last, match.index)));
    fragment.append(h("a", { href: url.href, target: "_blank", rel: "noopener noreferrer nofollow" }, address));
    last = match.index + address.length;
  }
  fragment.append(document.createTextNode(text.slice(last)));
  return fragment;
}

/**
 * Make `parent`'s children exactly `nodes`, in order, moving as little as
 * possible: nodes already in place stay put, so focus and text selection
 * inside them survive a re-render.
 */
export function reconcileChildren(parent, nodes) {
  const wanted = new Set(nodes);
  for (const child of [...parent.childNodes]) {
    if (!wanted.has(child)) child.remove();
  }
  let cursor = parent.firstChild;
  for (const node of nodes) {
    if (node === cursor) {
      cursor = cursor.nextSibling;
    } else {
      parent.insertBefore(node, cursor);
    }
  }
}

// Message formatting: the small Markdown subset message bodies may use.
//
//   **bold**  *italic* or _italic_  ~~strike~~  `code`
//   ```a code block```  (from the start of a line to the next ```)
//   > a quote           (lines starting with "> ")
//   [text](https://address)   http(s) addresses seen bare become links too
//
// A body travels and is stored as the text its author typed; this module
// only decides how the page shows it. It builds DOM nodes (createElement,
// text nodes) and never HTML, so nothing in a body can add markup or run
// script: the only elements are the ones listed here, the only attribute
// taken from a body is a link's address, and only when it is http(s).
//
// Rules, kept simple and linear in the body's length:
// - Inside code (spans and blocks) nothing is parsed: no formatting, no
//   links, no mentions.
// - A marker that closes nothing (or opens nothing) stays as its
//   characters: "2 * 3 * 4", "**half", "`tick".
// - `_` does not work inside a word (snake_case_names stay as typed); `*`
//   and `~~` do. Addresses (https://…) are one piece: an `_` or `*` inside
//   one is part of it, never a marker.
// - Formatting nests at most MAX_NESTING deep; a deeper pair stays literal.
// - No escapes and no HTML: a backslash or "<b>" is shown as typed.
//
// `rendered(text, {textRun})` answers a fragment; `textRun(text)` makes the
// nodes of each run of plain text outside code (default: `linkified`), the
// hook the chat uses to mark mentions. `plainText(text)` answers the same
// body without its markers, for places that show text only (notifications,
// reply quotes).

import { h, linkified } from "./dom.js";

/** How deep bold/italic/strike may nest inside one another. */
export const MAX_NESTING = 6;

const FENCE = "```";
/** A fence's first line naming a language ("```python"): not shown. */
const LANGUAGE = /^[\w+#.-]{1,20}$/;
/** A bare address, as `linkified` finds them; tried only where one starts. */
const URL_AT = /https?:\/\/[^\s<>"']+/iy;
/** What ends an address but is not part of it (markers, punctuation). */
const URL_TRAILING = /[.,;:!?'")\]}*_~]+$/;
const URL_START = /^https?:\/\/./i;
/** "[text](https://address)": text on one line, an http(s) address without spaces. */
const LINK_AT = /\[([^[\]\n]{1,300})\]\((https?:\/\/[^\s()<>]{1,2000})\)/iy;
const WORD_CHAR = /[\p{L}\p{N}_]/u;
const SPACE = /\s/u;
const PUNCTUATION = /[\p{P}\p{S}]/u;

// -- blocks --

/**
 * The body as blocks: {kind: "para", text}, {kind: "quote", text} (without
 * the "> "), {kind: "pre", text, language}. Blank lines next to a quote or
 * a code block are dropped (the block has its own margin).
 */
function blocks(text) {
  const out = [];
  let para = [];
  let quote = [];
  let fenceCloses = true; // false once no "```" is left to close one
  const flush = () => {
    if (para.length) out.push({ kind: "para", text: para.join("\n") });
    if (quote.length) out.push({ kind: "quote", text: quote.join("\n") });
    para = [];
    quote = [];
  };
  let pos = 0;
  while (pos <= text.length) {
    let end = text.indexOf("\n", pos);
    if (end < 0) end = text.length;
    const line = text.slice(pos, end);
    if (line.startsWith(FENCE) && fenceCloses) {
      const close = text.indexOf(FENCE, pos + FENCE.length);
      if (close < 0) {
        fenceCloses = false;
      } else {
        flush();
        out.push(codeBlock(text.slice(pos + FENCE.length, close)));
        pos = close + FENCE.length;
        if (text[pos] === "\n") pos += 1;
        if (pos >= text.length) break;
        continue;
      }
    }
    if (line.startsWith("> ") || line === ">") {
      if (para.length) flush();
      quote.push(line.slice(2));
    } else {
      if (quote.length) flush();
      para.push(line);
    }
    pos = end + 1;
  }
  flush();
  // Blank lines around a block are the block's margin, not text.
  for (let i = 0; i < out.length; i += 1) {
    if (out[i].kind !== "para") continue;
    if (i > 0) out[i].text = out[i].text.replace(/^\n+/, "");
    if (i < out.length - 1) out[i].text = out[i].text.replace(/\n+$/, "");
  }
  return out.filter((block) => block.kind !== "para" || block.text !== "");
}

function codeBlock(inner) {
  let language = "";
  const newline = inner.indexOf("\n");
  if (newline > 0 && LANGUAGE.test(inner.slice(0, newline))) {
    language = inner.slice(0, newline);
    inner = inner.slice(newline + 1);
  } else if (newline === 0) {
    inner = inner.slice(1);
  }
  if (inner.endsWith("\n")) inner = inner.slice(0, -1);
  return { kind: "pre", text: inner, language };
}

// -- inline: tokens --

const DELIMITERS = { "*": true, _: true, "~": true };

/**
 * The text as tokens: {kind: "text"}, {kind: "code"}, {kind: "link"} and
 * {kind: "delim"} (a run of one marker character, with whether it may open
 * or close). One pass; each character is looked at a bounded number of times.
 */
function tokens(text) {
  const out = [];
  const runs = backtickRuns(text);
  let plain = "";
  const pushText = (value) => { plain += value; };
  const flushText = () => {
    if (plain) out.push({ kind: "text", text: plain });
    plain = "";
  };
  let i = 0;
  while (i < text.length) {
    const char = text[i];
    if (char === "`") {
      const run = runs.at(i);
      const close = runs.closing(run);
      if (close) {
        flushText();
        out.push({ kind: "code", text: codeSpanText(text.slice(i + run.length, close.start)) });
        i = close.start + close.length;
      } else {
        pushText(text.slice(i, i + run.length));
        i += run.length;
      }
      continue;
    }
    if (char === "[") {
      LINK_AT.lastIndex = i;
      const match = LINK_AT.exec(text);
      const link = match && linkTarget(match[1], match[2]);
      if (link) {
        flushText();
        out.push({ kind: "link", text: match[1], href: link });
        i += match[0].length;
        continue;
      }
    }
    if ((char === "h" || char === "H") && !(i > 0 && WORD_CHAR.test(text[i - 1]))) {
      URL_AT.lastIndex = i;
      const match = URL_AT.exec(text);
      if (match) {
        const address = match[0].replace(URL_TRAILING, "");
        if (URL_START.test(address)) {
          pushText(address);
          i += address.length;
          continue;
        }
      }
    }
    if (DELIMITERS[char]) {
      let end = i + 1;
      while (text[end] === char) end += 1;
      const length = end - i;
      const before = i > 0 ? text[i - 1] : "";
      const after = end < text.length ? text[end] : "";
      const delim = delimiter(char, length, before, after);
      if (delim.length) {
        flushText();
        out.push(...delim);
      } else {
        pushText(text.slice(i, end));
      }
      i = end;
      continue;
    }
    pushText(char);
    i += 1;
  }
  flushText();
  return out;
}

/** Backtick runs by position, and for each the next run of the same length (CommonMark's rule). */
function backtickRuns(text) {
  const byStart = new Map();
  const byLength = new Map(); // length -> runs in order
  for (let i = 0; i < text.length;) {
    if (text[i] !== "`") {
      i += 1;
      continue;
    }
    let end = i + 1;
    while (text[end] === "`") end += 1;
    const run = { start: i, length: end - i, index: 0 };
    const list = byLength.get(run.length) || [];
    run.index = list.length;
    list.push(run);
    byLength.set(run.length, list);
    byStart.set(i, run);
    i = end;
  }
  return {
    at: (start) => byStart.get(start),
    closing: (run) => byLength.get(run.length)[run.index + 1] || null,
  };
}

/** A code span's text: one space each side dropped when both are there (so "`` `x` ``" shows `x`). */
function codeSpanText(inner) {
  if (inner.length > 2 && inner.startsWith(" ") && inner.endsWith(" ") && inner.trim()) {
    return inner.slice(1, -1);
  }
  return inner;
}

/**
 * The address a "[text](address)" link goes to, or null to leave it as
 * text: only http(s), and never a text that looks like another address
 * ("[https://a.example](https://b.example)" would mislead).
 */
function linkTarget(text, address) {
  let url;
  try {
    url = new URL(address);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  if (/:\/\//.test(text) && text.trim() !== address && text.trim() !== url.href) return null;
  return url.href;
}

function classify(char) {
  if (!char || SPACE.test(char)) return "space";
  if (PUNCTUATION.test(char)) return "punct";
  return "word";
}

/**
 * The delimiter tokens for a run of `char` (none: the run is text).
 * CommonMark's flanking rules decide whether it may open or close.
 */
function delimiter(char, length, before, after) {
  let types;
  if (char === "*") types = length === 1 ? ["em*"] : length === 2 ? ["strong"] : length === 3 ? ["strong", "em*"] : null;
  else if (char === "_") types = length === 1 ? ["em_"] : null;
  else types = length === 2 ? ["del"] : null;
  if (!types) return [];
  const prev = classify(before);
  const next = classify(after);
  const leftFlanking = next !== "space" && (next !== "punct" || prev !== "word");
  const rightFlanking = prev !== "space" && (prev !== "punct" || next !== "word");
  let canOpen = leftFlanking;
  let canClose = rightFlanking;
  if (char === "_") {
    canOpen = leftFlanking && (!rightFlanking || prev === "punct");
    canClose = rightFlanking && (!leftFlanking || next === "punct");
  }
  if (!canOpen && !canClose) return [];
  // "***x***" opens bold then italic and closes them the other way round.
  if (types.length === 2 && canClose && !canOpen) types = [types[1], types[0]];
  const raw = { strong: "**", "em*": "*", em_: "_", del: "~~" };
  return types.map((type) => ({ kind: "delim", type, raw: raw[type], canOpen, canClose }));
}

// -- inline: pairing and the tree --

/**
 * Pair openers with closers (each closer takes the nearest open marker of
 * its kind; markers left open in between stay text). Marks tokens with
 * `opens` / `closes`. Linear: each opener is pushed and dropped once.
 */
function pair(list) {
  const stack = [];                 // {token, inner}: open markers, innermost last
  const ofType = new Map();         // type -> indexes into stack
  const root = { inner: 0 };
  const drop = (length) => {
    let inner = 0;
    while (stack.length > length) {
      const entry = stack.pop();
      ofType.get(entry.token.type).pop();
      inner = Math.max(inner, entry.inner);
    }
    return inner;
  };
  for (const token of list) {
    if (token.kind !== "delim") continue;
    const open = ofType.get(token.type);
    if (token.canClose && open?.length) {
      const at = open[open.length - 1];
      const opener = stack[at];
      const depth = Math.max(opener.inner, drop(at + 1)) + 1;
      drop(at);
      const parent = stack.length ? stack[stack.length - 1] : root;
      if (depth <= MAX_NESTING) {
        opener.token.opens = true;
        token.closes = true;
        parent.inner = Math.max(parent.inner, depth);
        continue;
      }
      parent.inner = Math.max(parent.inner, depth - 1);
    }
    if (token.canOpen) {
      if (!ofType.has(token.type)) ofType.set(token.type, []);
      ofType.get(token.type).push(stack.length);
      stack.push({ token, inner: 0 });
    }
  }
}

const ELEMENT = { strong: "strong", "em*": "em", em_: "em", del: "del" };

/** Inline text as a tree: {kind: "text"|"code"|"link", …} and {kind: "strong"|"em"|"del", children}. */
function inline(text) {
  const list = tokens(text);
  pair(list);
  const root = { children: [] };
  const open = [root];
  let plain = "";
  const flush = () => {
    if (plain) open[open.length - 1].children.push({ kind: "text", text: plain });
    plain = "";
  };
  for (const token of list) {
    if (token.kind === "text") {
      plain += token.text;
    } else if (token.kind === "delim" && !token.opens && !token.closes) {
      plain += token.raw;
    } else if (token.kind === "delim" && token.opens) {
      flush();
      const node = { kind: ELEMENT[token.type], children: [] };
      open[open.length - 1].children.push(node);
      open.push(node);
    } else if (token.kind === "delim") {
      flush();
      open.pop();
    } else {
      flush();
      open[open.length - 1].children.push(token);
    }
  }
  flush();
  return root.children;
}

// -- output --

function inlineNodes(nodes, textRun) {
  return nodes.map((node) => {
    if (node.kind === "text") return textRun(node.text);
    if (node.kind === "code") return h("code", null, node.text);
    if (node.kind === "link") {
      return h("a", { href: node.href, title: node.href, target: "_blank", rel: "noopener noreferrer nofollow" }, node.text);
    }
    return h(node.kind, null, inlineNodes(node.children, textRun));
  });
}

function inlineText(nodes) {
  return nodes.map((node) => (node.children ? inlineText(node.children) : node.text)).join("");
}

/**
 * A body as DOM nodes, in a fragment. `textRun(text)` makes the nodes of
 * each plain-text run outside code and link texts (a node, a fragment or a
 * string); by default addresses become links (`linkified`).
 */
export function rendered(text, { textRun = linkified } = {}) {
  const fragment = document.createDocumentFragment();
  for (const block of blocks(text)) {
    if (block.kind === "pre") {
      fragment.append(h("pre", null, h("code", block.language ? { "data-language": block.language } : null, block.text)));
    } else if (block.kind === "quote") {
      fragment.append(h("blockquote", null, inlineNodes(inline(block.text), textRun)));
    } else {
      for (const node of inlineNodes(inline(block.text), textRun)) {
        fragment.append(typeof node === "string" ? document.createTextNode(node) : node);
      }
    }
  }
  return fragment;
}

/** A body without its markers, as text (blocks on lines of their own). */
export function plainText(text) {
  return blocks(text).map((block) => (block.kind === "pre" ? block.text : inlineText(inline(block.text)))).join("\n");
}

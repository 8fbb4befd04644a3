// The Socket.IO connection, shared by the chat page and the admin console.
//
// The client is the official socket.io JavaScript client, vendored under
// static/vendor/socket.io (see docs/ui.md for how it is updated).

import { io } from "../../vendor/socket.io/socket.io.esm.min.js";

const DEFAULT_TIMEOUT_MS = 10000;

/**
 * The transports the page was told to use: `data-transports="websocket"` on
 * <body> (a WebSocket-only server sets it), else the client's default,
 * HTTP long-polling first and then the upgrade to WebSocket.
 */
export function pageTransports(root = document.body) {
  const declared = (root?.dataset.transports || "").split(",").map((t) => t.trim()).filter(Boolean);
  return declared.length ? declared : ["polling", "websocket"];
}

/** Connect to a namespace of this site ("/public", "/admin"). */
export function connect(namespace, options = {}) {
  return io(namespace, { transports: pageTransports(), ...options });
}

/**
 * Emit an event and resolve with its ack, always one object: the server's
 * `{ok: true, ...}` / `{ok: false, error}`, or an error of this page's own:
 * `offline` (not connected, or the connection dropped before the answer;
 * nothing is sent in the first case) and `timeout` (no answer in time).
 */
export function call(socket, event, payload = {}, timeoutMs = DEFAULT_TIMEOUT_MS) {
  if (!socket.connected) {
    return Promise.resolve(localError("offline", "You are offline; this will work once the connection is back."));
  }
  return new Promise((resolve) => {
    socket.timeout(timeoutMs).emit(event, payload, (err, ack) => {
      if (err) {
        resolve(socket.connected
          ? localError("timeout", "The server did not answer in time.")
          : localError("offline", "The connection dropped before the server answered."));
      } else if (!ack || typeof ack !== "object") {
        resolve(localError("internal", "The server sent an unexpected answer."));
      } else {
        resolve(ack);
      }
    });
  });
}

function localError(code, message) {
  return { ok: false, error: { code, message } };
}

"""The reference point: a minimal Flask-SocketIO relay on Parley's stack.

Same worker class (gevent-websocket under gunicorn), same namespace and
events, no sign-in, no database, no rate limit: ``room:join`` joins a room,
``message:send`` acks and rebroadcasts a message of the same shape as
Parley's. The difference between the two is what Parley's features cost.

Run: ``gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker
--worker-connections 20000 bench.relay:app``
"""
from gevent import monkey

monkey.patch_all()

import itertools  # noqa: E402
import os  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

from flask import Flask, request  # noqa: E402
from flask_socketio import Namespace, SocketIO, join_room  # noqa: E402

app = Flask(__name__)
json_module = None
if os.environ.get("RELAY_JSON") == "orjson":
    from app import fastjson as json_module  # noqa: E402
socketio = SocketIO(app, async_mode="gevent", transports=["websocket"], logger=False,
                    engineio_logger=False, ping_interval=25, ping_timeout=20,
                    **({"json": json_module} if json_module else {}))
_ids = itertools.count(1)
_user = {"id": 1, "username": "relay"}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Relay(Namespace):
    def on_connect(self, auth=None):
        pass

    def trigger_event(self, event, *args):
        return super().trigger_event(event.replace(":", "_"), *args)

    def on_room_join(self, payload):
        join_room("room:" + payload["room"])
        return {"ok": True, "room": {"slug": payload["room"]}, "messages": [], "has_more": False}

    def on_message_send(self, payload):
        message = {"id": next(_ids), "room": payload["room"], "user": _user,
                   "body": payload["body"], "created_at": _now(), "edited_at": None,
                   "client_id": payload["client_id"]}
        socketio.emit("message", message, namespace="/public", to="room:" + payload["room"])
        return {"ok": True, "message": message}


socketio.on_namespace(Relay("/public"))


@app.get("/healthz")
def healthz():
    return {"status": "ok", "remote": request.remote_addr}

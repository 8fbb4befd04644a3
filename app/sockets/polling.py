"""Long-polling responses that python-socketio clients can read.

python-engineio's client refuses a long-polling response of more than
``Payload.max_decode_packets`` packets (16 by default, a guard against packet
floods) and drops the connection. The server, left alone, answers each poll
with everything queued since the previous one, so a python client polling a
busy room, or waiting on many acks at once, was cut off. Answering with at
most 16 packets keeps every official client connected: the rest stays queued
and goes out on the next poll, which the client sends at once.
"""
from __future__ import annotations

from engineio import exceptions
from engineio import socket as engineio_socket

# The python client's default Payload.max_decode_packets.
CLIENT_MAX_DECODE_PACKETS = 16


def cap_polling_responses(limit: int = CLIENT_MAX_DECODE_PACKETS) -> None:
    """Make every Engine.IO socket of this process answer a poll with at most ``limit`` packets."""
    if getattr(engineio_socket.Socket.poll, "parley_limit", None) == limit:
        return

    def poll(self):
        # python-engineio 4.x's Socket.poll, stopping at ``limit`` packets.
        # Packets past it are never taken off the queue, so nothing is lost
        # when the socket upgrades to WebSocket or closes in between.
        queue_empty = self.server.get_queue_empty_exception()
        try:
            packets = [self.queue.get(
                timeout=self.server.ping_interval + self.server.ping_timeout)]
            self.queue.task_done()
        except queue_empty:
            raise exceptions.QueueEmpty()
        if packets == [None]:
            return []
        while len(packets) < limit:
            try:
                pkt = self.queue.get(block=False)
                self.queue.task_done()
                if pkt is None:
                    self.queue.put(None)
                    break
                packets.append(pkt)
            except queue_empty:
                break
        return packets

    poll.parley_limit = limit
    engineio_socket.Socket.poll = poll

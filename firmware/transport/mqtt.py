"""The MQTT transport: the link session's packets over the hall broker (protocol.md §9).

One Client for the device's life, one numbered connection per connect(). On each
connect the Last Will is STATE(online=False, boot, conn) on the device's state topic
(retained, QoS 1) and, once connected, STATE(online=True, boot, conn) is published there
retained, so the agent sees presence with a counter a late will cannot undo. Packets go
to `up` at QoS 1 and come from `down` (subscribed at QoS 1); QoS 1 may redeliver, which
the session's replay window absorbs. Credentials: user = device id, password =
topics.broker_password(key). A lost link raises OSError (MqttError) from send/recv; the
application closes the transport and calls connect() again after its backoff (the
client's own backoff is for callers that have none). Unacknowledged packets survive
close() and are resent on the next connection.
"""

from firmware.net.mqtt import Client, tls_context
from firmware.transport import Transport
from protocol.topics import DOWN_TOPIC, STATE_TOPIC, UP_TOPIC, broker_password, topic

KEEPALIVE_S = 60


class MqttTransport(Transport):
    def __init__(self, cfg, hall, device_id, key, presence):
        self.up = topic(hall, device_id, UP_TOPIC)
        self.state = topic(hall, device_id, STATE_TOPIC)
        self.down = topic(hall, device_id, DOWN_TOPIC)
        tls = bool(cfg.get("tls"))
        self.client = Client(
            device_id,
            cfg["host"],
            cfg.get("port") or (8883 if tls else 1883),
            user=device_id,
            password=broker_password(key),
            keepalive=cfg.get("keepalive_s") or KEEPALIVE_S,
            clean=True,  # each connection starts with HELLO: stale queued packets are useless
            ssl=tls_context(cfg.get("ca")) if tls else None,
        )
        self.client.subs.append((self.down, 1))
        # The app paces reconnects itself (firmware/app.py _link: jittered doubling backoff,
        # connect() under a 10 s timeout), so the client adds no delay of its own: two
        # backoffs would add up, and a long one would be cut by the app's timeout.
        self.client.backoff_base_ms = 0
        self.presence = presence  # presence(online, conn) -> signed STATE packet bytes
        self.conn = 0  # connection number within this boot, one per attempt

    async def connect(self):
        c = self.client
        if c.is_connected():
            return
        self.conn += 1
        c.will = (self.state, self.presence(False, self.conn), 1, True)
        await c.connect()
        # Each connection starts a new link session (HELLO): what the old one left unread
        # belongs to a session that is gone.
        del c.queue[:]
        await c.publish(self.state, self.presence(True, self.conn), 1, True)

    async def send(self, packet):
        await self.client.publish(self.up, packet, 1)

    async def recv(self):
        while True:
            t, payload = await self.client.recv()
            if t == self.down:
                return payload

    async def close(self):
        """Say offline (a clean DISCONNECT discards the will), then disconnect."""
        c = self.client
        if c.is_connected():
            try:
                pid = await c.publish(self.state, self.presence(False, self.conn), 1, True)
                await c.wait_acked(pid)
            except OSError:
                pass
        await c.disconnect()

"""MQTT device links: one paho client for the hall, one link session per device behind it.

Strategy (docs/protocol.md §9; docs/hall-admin.md, "MQTT devices"):

- **One client, many sessions.** ``MqttLinks`` owns the agent's broker connection (its own
  account, paho-mqtt 2.x with callback API v2) and subscribes to ``hcp/v1/<hall>/+/up`` and
  ``+/state`` at QoS 1. paho runs its network loop in its own thread; every callback hops
  onto the agent's event loop with ``call_soon_threadsafe`` and nothing else, so the store,
  the sessions and the links are touched only by the loop, as on serial.
- **Per device**, an ``MqttDeviceLink`` (a device_session.SessionLink, exactly what a serial
  link runs above the bytes) is created the first time the device's topic carries anything.
  Its task feeds ``up`` payloads (packets without COBS/CRC) into the session and publishes
  what the session sends on the device's ``down`` topic at QoS 1. A RATING is acknowledged
  only after its commit, as on serial. QoS 1 redelivery is a retransmission to the session:
  the replay window and the stream seq drop it (counted, never stored twice).
- **Presence** comes from the retained, signed STATE on ``state`` and the Last Will:
  protocol.topics.Presence orders them by (boot, conn), so a late will of an older
  connection cannot mark a live device offline (counted as ``presence.stale``). An
  applied offline state closes the device's session (LinkDown, offline in the registry).
- **Quarantine** (``hcp agent quarantine``) also cuts off a live link within BLOCK_CHECK_S:
  its session is closed and what it sends is dropped until it is released.
- **Unknown devices** get a registry row quarantined as ``no_key`` (``hcp agent devices``
  shows them) and their packets are counted as ``quarantined`` and dropped until
  ``hcp agent add-device`` stores a key; at most DEVICES_MAX ids are tracked per run.
- **Refused input** (forged tag, replay, malformed CBOR, wrong topic, oversized payload, a
  flood beyond INBOX_MAX) is counted per device by code, logged, and never stops a link.
- **Embedded broker** (``[mqtt] embedded = true``, demos): edge_agent.embedded_broker runs
  amqtt in this loop with the registry's accounts and ACLs before the client connects.
- **Broker loss.** paho reconnects with backoff RECONNECT_MIN_S … RECONNECT_MAX_S (also
  when the first connection fails, or the broker refuses the credentials); sessions stay as
  they are, and a device silent for three heartbeats is marked down by its session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import ssl
from collections import Counter
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent import registry
from edge_agent.config import MqttConfig
from edge_agent.device_session import (
    BLOCK_CHECK_S,
    IDLE_WAKE_S,
    QUARANTINE_RECHECK_S,
    SessionLink,
    mono_ms,
)
from edge_agent.errors import AgentError, Msg
from edge_agent.logs import log_event
from edge_agent.service import HallService
from edge_agent.wire import AgentSession
from protocol import topics
from protocol.errors import ProtocolError
from protocol.packet import Signer

log = logging.getLogger("hcp.agent.mqtt")

KEEPALIVE_S = 30  # the broker notices a dead agent within 1.5x this
RECONNECT_MIN_S = 1  # a restarted broker is back within seconds
RECONNECT_MAX_S = 30  # a broker down for long is polled twice a minute
PAYLOAD_MAX = 1280  # protocol.framing.MAX_PACKET: no valid packet is larger
INBOX_MAX = 256  # queued payloads per device; a flood beyond this is dropped (and counted)
DEVICES_MAX = 10_000  # device ids tracked per run; a hall has tens to hundreds
LOG_REPEAT_S = 60.0  # a repeating broker-level warning is logged once a minute
QOS = 1  # docs/protocol.md §9: QoS 1 both ways, the session deduplicates


class PresenceState:
    """protocol.topics.Presence with types (protocol/ carries no annotations)."""

    def __init__(self, key: bytes) -> None:
        self._signer = Signer(key)  # type: ignore[no-untyped-call]
        self._p = topics.Presence()  # type: ignore[no-untyped-call]

    def update(self, payload: bytes) -> bool:
        """True if applied, False if stale; ProtocolError if the payload is bad."""
        return bool(self._p.update(self._signer, payload))  # type: ignore[no-untyped-call]

    @property
    def online(self) -> bool | None:
        value: bool | None = self._p.online
        return value

    @property
    def boot_conn(self) -> tuple[int, int]:
        return int(self._p.boot), int(self._p.conn)


def _topic(hall: str, device: str, leaf: str) -> str:
    name: str = topics.topic(hall, device, leaf)  # type: ignore[no-untyped-call]
    return name


class MqttDeviceLink(SessionLink):
    """The agent's side of one device attached through the hall broker."""

    LINK = "mqtt"

    def __init__(self, service: HallService, device_id: str, links: MqttLinks) -> None:
        super().__init__(service, device_id)
        self.links = links
        self.state = "starting"  # quarantined, attached (waiting for HELLO), open
        self.down_topic = _topic(service.hall.hall_id, device_id, topics.DOWN_TOPIC)
        self.presence: PresenceState | None = None
        self.presence_changes = 0
        self._inbox = asyncio.Queue()

    def deliver(self, leaf: str, payload: bytes) -> None:
        """A payload from the broker (called on the loop by MqttLinks)."""
        inbox = self._inbox
        assert inbox is not None
        if inbox.qsize() >= INBOX_MAX:
            self.refused["mqtt.inbox_full"] += 1  # the device resends what mattered
            return
        inbox.put_nowait((leaf, payload))

    # ---------------------------------------------------------------- attach loop
    async def run(self) -> None:
        inbox = self._inbox
        assert inbox is not None
        await self._load_counters()
        while True:
            if await self._check_quarantine():
                await self._drop_while_quarantined(inbox)
                continue
            self.attachments += 1
            try:
                await self._attached(inbox)
            except Exception:  # a fault in this link must not stop it, nor the agent
                self.crashes += 1
                log.exception("link.crashed", extra={"fields": {"device": self.device_id}})
                await asyncio.sleep(QUARANTINE_RECHECK_S)
            finally:
                await self._detach()

    async def _drop_while_quarantined(self, inbox: asyncio.Queue[Any]) -> None:
        """Count and drop what a quarantined device sends, for QUARANTINE_RECHECK_S."""
        end = mono_ms() + int(QUARANTINE_RECHECK_S * 1000)
        while (left := end - mono_ms()) > 0:
            with contextlib.suppress(TimeoutError):
                item = await asyncio.wait_for(inbox.get(), left / 1000)
                if item is not None:
                    self.refused["quarantined"] += 1
                    self._log_limited("packet.quarantined", logging.WARNING, leaf=item[0])

    async def _detach(self) -> None:
        self.state = "starting"
        await self._link_down("link stopped")

    # ---------------------------------------------------------------- one attachment
    async def _attached(self, inbox: asyncio.Queue[Any]) -> None:
        session = await self._new_session()
        if session is None:
            return  # the key was removed meanwhile: back to quarantine
        if self.presence is None:
            key = await self.db.run(registry.device_key, self.device_id)
            if key is None:
                return
            self.presence = PresenceState(key)
            del key
        check_at = mono_ms() + int(BLOCK_CHECK_S * 1000)
        while True:
            now = mono_ms()
            if now >= check_at:
                check_at = now + int(BLOCK_CHECK_S * 1000)
                if await self._cut_if_quarantined(session, now):
                    return
            deadlines = [t for t in (session.next_deadline(), self._retry_at) if t is not None]
            timeout = IDLE_WAKE_S if not deadlines else (min(deadlines) - now) / 1000
            timeout = min(max(timeout, 0.0), IDLE_WAKE_S)
            items: list[Any] = []
            with contextlib.suppress(TimeoutError):
                items.append(await asyncio.wait_for(inbox.get(), timeout))
            while not inbox.empty():
                items.append(inbox.get_nowait())
            now = mono_ms()
            for item in items:
                if item is None:
                    continue  # a wake-up from push()
                leaf, payload = item
                if leaf == topics.UP_TOPIC:
                    session.receive(payload, now)
                    self.last_seen_ms = self.service.clock_ms()
                else:
                    await self._on_state(session, payload, now)
            session.poll(now)
            await self._handle_events(session)
            if self._resend_state and session.is_open():
                self._resend_state = False
                self._pending = [(m, None) for m in await self._state_messages()]
            self._send_pending(session)
            for packet in session.packets_to_send():
                self.links.publish(self.down_topic, packet)

    async def _on_state(self, session: AgentSession, payload: bytes, now: int) -> None:
        presence = self.presence
        assert presence is not None
        try:
            applied = presence.update(payload)
        except ProtocolError as e:
            code = str(e.code)
            self.refused[code] += 1
            log_event(log, "state.refused", logging.INFO, device=self.device_id, code=code)
            return
        boot, conn = presence.boot_conn
        if not applied:
            self.refused["presence.stale"] += 1  # a late will of an older connection
            log_event(log, "presence.stale", device=self.device_id, boot=boot, conn=conn)
            return
        self.presence_changes += 1
        log_event(
            log,
            "presence.online" if presence.online else "presence.offline",
            device=self.device_id,
            boot=boot,
            conn=conn,
        )
        if presence.online:
            self.last_seen_ms = self.service.clock_ms()
        elif session.is_open():
            session.close(now)  # LinkDown: the registry marks the device offline
        else:
            await self._record_link_down()

    def snapshot(self) -> dict[str, Any]:
        """For /healthz and /metrics."""
        presence = self.presence
        return {
            "port": f"mqtt://{self.links.cfg.host}:{self.links.port}",
            **super().snapshot(),
            "presence": None
            if presence is None
            else {"online": presence.online, "boot_conn": list(presence.boot_conn)},
        }


class MqttLinks:
    """The agent's broker connection and the device links behind it."""

    def __init__(
        self,
        service: HallService,
        cfg: MqttConfig,
        *,
        serial_devices: frozenset[str] = frozenset(),
        port: int | None = None,
    ) -> None:
        self.service = service
        self.cfg = cfg
        self.port = port if port is not None else cfg.port  # the embedded broker's real port
        self.hall = service.hall.hall_id
        self.serial_devices = serial_devices
        self.links: dict[str, MqttDeviceLink] = {}
        self.refused: Counter[str] = Counter()  # what no device link can be charged with
        self.state = "starting"  # connecting, connected, refused, unreachable, disconnected
        self.connections = 0
        self.published = 0
        self.connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: paho.Client | None = None
        self._logged: dict[str, int] = {}
        self._secret = self._password()  # at start: a missing file stops the start clearly
        service.brokers["mqtt"] = self  # /healthz shows the connection's state
        if self._secret is None and cfg.embedded:
            self._secret = secrets.token_hex(16)  # the agent's account on its own broker
        self.broker: Any = None  # edge_agent.embedded_broker.EmbeddedBroker when embedded

    # ---------------------------------------------------------------- client
    def _password(self) -> str | None:
        path = self.cfg.password_file
        if path is None:
            return None
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise AgentError(
                "mqtt.password_file",
                Msg(
                    "无法读取 MQTT 密码文件 {p}：{e}", "cannot read the MQTT password file {p}: {e}"
                ).fill(p=path, e=e.strerror or e),
            ) from e

    def _make_client(self) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"hcp-agent-{self.hall}",
            clean_session=True,  # devices resend what they hold; stale queues only replay
            protocol=paho.MQTTv311,
        )
        client.username_pw_set(self.cfg.username, self._secret)
        if self.cfg.tls:
            client.tls_set(
                ca_certs=str(self.cfg.ca) if self.cfg.ca else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_connect = self._cb_connect
        client.on_disconnect = self._cb_disconnect
        client.on_message = self._cb_message
        client.on_connect_fail = self._cb_connect_fail
        client.on_socket_open = self._cb_socket_open
        return client

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.cfg.embedded:
            await self._start_embedded()
        client = self._make_client()
        self._client = client
        self.state = "connecting"
        client.connect_async(self.cfg.host, self.port, keepalive=KEEPALIVE_S)
        client.loop_start()  # retries the first connection too
        log_event(log, "mqtt.connecting", host=self.cfg.host, port=self.port)
        try:
            await asyncio.Event().wait()  # until cancelled by the agent's stop
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                client.disconnect()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.to_thread(client.loop_stop), 5)
            if self.broker is not None:
                await self.broker.stop()

    async def _start_embedded(self) -> None:
        """The demo broker (amqtt) in this loop, with the registry's accounts and ACLs."""
        from edge_agent.embedded_broker import EmbeddedBroker, RegistryAccounts

        assert self._secret is not None
        accounts = RegistryAccounts(
            self.service.db, hall=self.hall, agent_user=self.cfg.username, agent_secret=self._secret
        )
        self.broker = EmbeddedBroker(accounts, host=self.cfg.host, port=self.port)
        self.port = await self.broker.start()
        log_event(log, "mqtt.embedded_broker", host=self.cfg.host, port=self.port)

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 (from the loop; paho queues it for its thread)."""
        client = self._client
        if client is None or not self.connected.is_set():
            return  # the session retransmits what matters once the broker is back
        info = client.publish(topic, payload, qos=QOS)
        if info.rc == paho.MQTT_ERR_SUCCESS:
            self.published += 1

    # ---------------------------------------------------------------- paho thread -> loop
    def _post(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the agent is stopping
            loop.call_soon_threadsafe(fn, *args)

    def _cb_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self._post(self._on_refused, str(reason))
            return
        client.subscribe([(t, QOS) for t in topics.agent_subscriptions(self.hall)])  # type: ignore[no-untyped-call]
        self._post(self._on_connected)

    @staticmethod
    def _cb_socket_open(client: paho.Client, userdata: Any, sock: Any) -> None:
        # A packet is a few dozen bytes and every ACK waits for one: Nagle's algorithm with
        # delayed ACKs would hold each for ~40 ms (measured: press-to-ack 88 ms → 4 ms).
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _cb_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self._post(self._on_unreachable)  # no TCP/TLS connection (paho retries)

    def _cb_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._post(self._on_disconnected, str(reason))

    def _cb_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self._post(self._on_message, msg.topic, bytes(msg.payload))

    # ---------------------------------------------------------------- on the loop
    def _on_connected(self) -> None:
        self.connections += 1
        self.state = "connected"
        self.connected.set()
        log_event(log, "mqtt.connected", host=self.cfg.host, port=self.port, n=self.connections)

    def _on_refused(self, reason: str) -> None:
        self.state = "refused"
        self.connected.clear()
        self.refused["mqtt.connect_refused"] += 1
        self._log_limited("mqtt.connect_refused", logging.ERROR, reason=reason)

    def _on_unreachable(self) -> None:
        self.state = "unreachable"
        self.refused["mqtt.connect_failed"] += 1
        self._log_limited(
            "mqtt.unreachable", logging.ERROR, host=self.cfg.host, port=self.port, tls=self.cfg.tls
        )

    def _on_disconnected(self, reason: str) -> None:
        if self.state != "refused":
            self.state = "disconnected"
        if self.connected.is_set():
            log_event(log, "mqtt.disconnected", logging.WARNING, reason=reason)
        self.connected.clear()

    def _on_message(self, name: str, payload: bytes) -> None:
        try:
            hall, device, leaf = topics.parse(name)  # type: ignore[no-untyped-call]
        except ProtocolError as e:
            self._refuse(str(e.code), topic=name[:120])
            return
        if hall != self.hall or leaf == topics.DOWN_TOPIC:
            self._refuse("topic.unexpected", topic=name[:120])
            return
        if device in self.serial_devices:
            self._refuse("mqtt.serial_device", device=device)
            return
        link = self.links.get(device)
        if link is None:
            if len(self.links) >= DEVICES_MAX:
                self._refuse("mqtt.devices_max", device=device)
                return
            link = MqttDeviceLink(self.service, device, self)
            self.links[device] = link
            self._tasks.append(asyncio.create_task(link.run(), name=f"mqtt-{device}"))
        if len(payload) > PAYLOAD_MAX:
            link.refused["mqtt.oversize"] += 1
            log_event(log, "packet.refused", logging.INFO, device=device, code="mqtt.oversize")
            return
        link.deliver(leaf, payload)

    def _refuse(self, code: str, **fields: Any) -> None:
        self.refused[code] += 1
        self._log_limited("mqtt.refused", logging.WARNING, key=code, code=code, **fields)

    def _log_limited(self, event: str, level: int, key: str = "", **fields: Any) -> None:
        """Log at most once per LOG_REPEAT_S per (event, key): a flood must not flood the log."""
        now = mono_ms()
        k = f"{event}/{key}"
        if now - self._logged.get(k, -int(LOG_REPEAT_S * 1000)) >= LOG_REPEAT_S * 1000:
            self._logged[k] = now
            log_event(log, event, level, **fields)

    def snapshot(self) -> dict[str, Any]:
        return {
            "host": self.cfg.host,
            "port": self.port,
            "state": self.state,
            "connections": self.connections,
            "published": self.published,
            "devices": len(self.links),
            "refused": dict(self.refused),
        }

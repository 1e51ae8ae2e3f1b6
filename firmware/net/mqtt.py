"""An asyncio MQTT 3.1.1 client for MicroPython: QoS 0/1, keepalive, Last Will, TLS.

Strategy. One Client object outlives its connections: its subscriptions and its unacked
QoS 1 messages are kept across reconnects, renewed and resent (with DUP) on the next
CONNACK. Per connection it runs two tasks: a reader that decodes every packet the broker
sends (mqtt_wire.decode refuses malformed ones) and a ticker that sends PINGREQ, declares
the peer dead when the PINGRESP does not come, and retransmits QoS 1 messages whose
PUBACK is late (allowed in 3.1.1, §4.4). Any failure ends the connection in one place,
_lost(), which wakes every waiter with the error; connect() is one attempt, preceded by a
jittered exponential backoff delay once attempts have failed, so a caller's retry loop is
paced by the client. Every wait has a timeout; memory is bounded by max_packet (largest
packet read), max_inflight (unacked QoS 1 messages) and max_queue (received messages not
yet taken: beyond it a message is acknowledged and dropped, counted in ``dropped``; the
link session above retransmits what it misses).

Time is integer milliseconds (ticks_ms / ticks_diff).
"""

import asyncio
import random
from time import ticks_add, ticks_diff, ticks_ms

from firmware.net import mqtt_wire as w
from firmware.net.mqtt_wire import MqttError

# Defaults; each can be changed per Client (attributes).
TIMEOUT_MS = 10000  # TCP/TLS connect, CONNACK, SUBACK, one write
RETRY_MS = 5000  # a QoS 1 PUBLISH without PUBACK is resent with DUP after this
BACKOFF_BASE_MS = 500
BACKOFF_CAP_MS = 60000  # bounded: a device never waits more than a minute to retry
MAX_PACKET = 4096  # largest remaining length read from the broker (protocol packets are smaller)
MAX_INFLIGHT = 8
MAX_QUEUE = 8


class Client:
    def __init__(
        self,
        client_id,
        host,
        port=1883,
        user=None,
        password=None,
        keepalive=60,
        clean=True,
        ssl=None,
        server_hostname=None,
    ):
        self.client_id = client_id
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive  # seconds; 0 turns keepalive off
        self.clean = clean
        self.ssl = ssl  # None, or an ssl.SSLContext (see tls_context)
        self.server_hostname = server_hostname or host
        self.will = None  # (topic, payload, qos, retain), read at each connect
        self.timeout_ms = TIMEOUT_MS
        self.retry_ms = RETRY_MS
        self.backoff_base_ms = BACKOFF_BASE_MS
        self.backoff_cap_ms = BACKOFF_CAP_MS
        self.max_packet = MAX_PACKET
        self.max_inflight = MAX_INFLIGHT
        self.max_queue = MAX_QUEUE
        self.tick_ms = 500
        self.subs = []  # [(topic filter, qos)], renewed on every connect
        self.inflight = {}  # pid -> [PUBLISH bytes, ticks sent]
        self.queue = []  # [(topic, payload)] received, not yet taken by recv()
        self.failures = 0  # consecutive failed connects: the backoff exponent
        self.last_delay_ms = 0  # the backoff delay before the latest attempt
        self.dropped = 0  # received messages dropped because the queue was full
        self.retransmits = 0
        self.connects = 0
        self.session_present = False
        self.error = MqttError("mqtt.closed", "not connected")  # None while connected
        self._pid = 0
        self._subacks = {}  # pid -> codes, filled by the reader
        self._sr = self._sw = None
        self._tasks = ()
        self._ev = asyncio.Event()  # replaced on every change (a broadcast to all waiters)
        self._wlock = asyncio.Lock()
        self._last_tx = self._last_rx = self._ping_at = 0

    # -- waiting ----------------------------------------------------------------------

    def _wake(self):
        ev = self._ev
        self._ev = asyncio.Event()
        ev.set()

    async def _until(self, ready, timeout_ms, what):
        """Wait until ready() is true; MqttError when the link is lost or time runs out."""
        end = ticks_add(ticks_ms(), timeout_ms)
        while not ready():
            if self.error is not None:
                raise self.error
            left = ticks_diff(end, ticks_ms())
            if left <= 0:
                raise MqttError("mqtt.timeout", "no %s within %d ms" % (what, timeout_ms))
            try:  # noqa: SIM105 (MicroPython has no contextlib)
                await asyncio.wait_for_ms(self._ev.wait(), left)
            except asyncio.TimeoutError:  # noqa: UP041 (MicroPython's own class)
                pass

    # -- connection -------------------------------------------------------------------

    def is_connected(self):
        return self.error is None

    def next_delay_ms(self):
        return w.backoff_ms(
            self.failures, self.backoff_base_ms, self.backoff_cap_ms, random.getrandbits(16)
        )

    async def connect(self):
        """One connection attempt (after the backoff delay if earlier attempts failed).

        On success the subscriptions are renewed and unacked QoS 1 messages resent with
        DUP; on failure raises MqttError (or the OSError of the socket).
        """
        if self.error is None:
            return
        delay = self.last_delay_ms = self.next_delay_ms()
        if delay:
            await asyncio.sleep_ms(delay)
        try:
            await self._open()
        except Exception as e:
            if isinstance(e, EOFError):
                e = MqttError("mqtt.closed", "the broker closed the connection")
            elif isinstance(e, ValueError) and self.ssl:  # how MicroPython's tls reports
                e = MqttError("mqtt.tls", "TLS handshake failed: " + str(e).strip())
            elif not isinstance(e, OSError):
                e = MqttError("mqtt.protocol", repr(e))
            self.failures += 1
            self._drop(e)
            raise e
        except BaseException:  # cancelled: leave nothing open
            self._drop(None)
            raise
        self.failures = 0

    async def _open(self):
        self._drop(None)
        try:
            self._sr, self._sw = await asyncio.wait_for_ms(
                asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.server_hostname if self.ssl else None,
                ),
                self.timeout_ms,
            )
        except asyncio.TimeoutError:  # noqa: UP041 (MicroPython's own class)
            raise MqttError("mqtt.timeout", "no TCP/TLS connection within %d ms" % self.timeout_ms)
        if not self.ssl:
            # Nagle holds a small PUBLISH until the previous segment is acked; with the peer's
            # delayed ACK that cost the agent ~40 ms per hop (docs/performance.md, MQTT link).
            try:  # noqa: SIM105 (MicroPython has no contextlib)
                self._sw.s.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY (lwIP uses the same)
            except (AttributeError, OSError):
                pass
        pkt = w.connect(
            self.client_id, self.keepalive, self.clean, self.user, self.password, self.will
        )
        self.error = None  # writes are allowed from here on
        await self._write(pkt)
        try:
            first, body = await asyncio.wait_for_ms(self._read(), self.timeout_ms)
        except asyncio.TimeoutError:  # noqa: UP041 (MicroPython's own class)
            raise MqttError("mqtt.timeout", "no CONNACK within %d ms" % self.timeout_ms)
        if first != w.CONNACK:
            raise MqttError("mqtt.protocol", "first packet is type %d, not CONNACK" % (first >> 4))
        _, present, rc = w.decode(first, body)
        if rc:
            raise MqttError(
                "mqtt.refused", "broker refused the connection: %s" % w.REFUSALS[rc], rc
            )
        self.session_present = present
        self.connects += 1
        self._last_rx = self._last_tx = ticks_ms()
        self._ping_at = 0
        self._tasks = (asyncio.create_task(self._reader()), asyncio.create_task(self._ticker()))
        if self.subs:
            await self._subscribe(self.subs)
        for pid in sorted(self.inflight):  # §4.4: resend unacked QoS 1, in order, with DUP
            await self._resend(pid)

    def _drop(self, err):
        """Close the socket and stop this connection's tasks (not the caller's own)."""
        sw = self._sw
        self._sr = self._sw = None
        if sw is not None:
            try:  # noqa: SIM105 (MicroPython has no contextlib)
                sw.close()
            except Exception:
                pass
        cur = asyncio.current_task()
        for t in self._tasks:
            if t is not cur:
                t.cancel()
        self._tasks = ()
        self.error = err or MqttError("mqtt.closed", "not connected")
        self._wake()

    def _lost(self, err):
        if self.error is None:
            self._drop(err)

    async def disconnect(self):
        """DISCONNECT (the broker discards the Last Will) and close."""
        if self.error is None:
            try:  # noqa: SIM105 (MicroPython has no contextlib)
                await self._write(w.DISCONNECT)
            except OSError:
                pass
        self._drop(MqttError("mqtt.closed", "disconnected"))

    def close(self):
        """Drop the connection without DISCONNECT: the broker publishes the Last Will."""
        self._drop(MqttError("mqtt.closed", "closed"))

    # -- bytes ------------------------------------------------------------------------

    async def _write(self, data):
        if self.error is not None:
            raise self.error
        async with self._wlock:
            sw = self._sw
            if sw is None:
                raise self.error or MqttError("mqtt.closed", "not connected")
            try:
                sw.write(data)
                await asyncio.wait_for_ms(sw.drain(), self.timeout_ms)
            except asyncio.TimeoutError:  # noqa: UP041 (MicroPython's own class)
                e = MqttError("mqtt.timeout", "write stalled %d ms" % self.timeout_ms)
                self._lost(e)
                raise e
            except OSError as e:
                self._lost(e)
                raise
            self._last_tx = ticks_ms()

    async def _read(self):
        """(first byte, body) of the next packet; the size limit is checked before reading."""
        sr = self._sr
        head = bytearray(await sr.readexactly(2))
        while True:
            got = w.read_varint(head, 1)  # raises after four length bytes
            if got is not None:
                break
            head += await sr.readexactly(1)
        n = got[0]
        if n > self.max_packet:
            raise MqttError("mqtt.oversize", "packet of %d bytes, limit %d" % (n, self.max_packet))
        body = await sr.readexactly(n) if n else b""
        self._last_rx = ticks_ms()
        return head[0], body

    # -- tasks ------------------------------------------------------------------------

    async def _reader(self):
        try:
            while True:
                first, body = await self._read()
                await self._handle(w.decode(first, body))
        except EOFError:
            self._lost(MqttError("mqtt.closed", "the broker closed the connection"))
        except OSError as e:
            self._lost(e)
        except Exception as e:
            self._lost(MqttError("mqtt.protocol", repr(e)))

    async def _handle(self, p):
        kind = p[0]
        if kind == "publish":
            _, topic, payload, qos, pid, _, _ = p
            if len(self.queue) < self.max_queue:
                self.queue.append((topic, payload))
            else:
                self.dropped += 1
            if qos:
                await self._write(w.puback(pid))
        elif kind == "puback":
            if self.inflight.pop(p[1], None) is None:
                return  # a late PUBACK of a message acknowledged before: harmless
        elif kind == "suback":
            if p[1] in self._subacks:
                self._subacks[p[1]] = p[2]
        elif kind == "pingresp":
            self._ping_at = 0
        else:  # a second CONNACK
            raise MqttError("mqtt.protocol", "unexpected %s" % kind.upper())
        self._wake()

    async def _ticker(self):
        ka = self.keepalive * 1000
        try:
            while True:
                await asyncio.sleep_ms(self.tick_ms)
                now = ticks_ms()
                if self._ping_at:
                    if ticks_diff(now, self._ping_at) > self.timeout_ms:
                        raise MqttError("mqtt.timeout", "no PINGRESP: the broker is unreachable")
                elif ka and (
                    ticks_diff(now, self._last_tx) >= ka * 3 // 4
                    or ticks_diff(now, self._last_rx) >= ka
                ):
                    self._ping_at = now or 1
                    await self._write(w.PINGREQ)
                for pid in list(self.inflight):
                    e = self.inflight.get(pid)
                    if e and ticks_diff(now, e[1]) >= self.retry_ms:
                        await self._resend(pid)
        except OSError as e:
            self._lost(e)
        except Exception as e:  # never leave a connection without its keepalive
            self._lost(MqttError("mqtt.protocol", repr(e)))

    # -- messages ---------------------------------------------------------------------

    def _next_pid(self):
        while True:
            self._pid = self._pid % 65535 + 1
            if self._pid not in self.inflight and self._pid not in self._subacks:
                return self._pid

    async def _resend(self, pid):
        e = self.inflight.get(pid)
        if e is None:
            return
        pkt = e[0]
        if not pkt[0] & 0x08:  # set DUP once; the rest of the packet is unchanged
            pkt = e[0] = bytes((pkt[0] | 0x08,)) + pkt[1:]
        e[1] = ticks_ms()
        self.retransmits += 1
        await self._write(pkt)

    async def publish(self, topic, payload, qos=0, retain=False):
        """Send one message; for QoS 1 returns its packet id (see acked()).

        QoS 1 waits (up to timeout_ms) for room in the in-flight window. An unacked
        message is kept across reconnects and resent; raises MqttError if not connected.
        """
        if qos == 0:
            await self._write(w.publish(topic, payload, 0, 0, retain))
            return 0
        await self._until(
            lambda: len(self.inflight) < self.max_inflight, self.timeout_ms, "room in flight"
        )
        pid = self._next_pid()
        pkt = w.publish(topic, payload, 1, pid, retain)
        self.inflight[pid] = [pkt, ticks_ms()]
        await self._write(pkt)
        return pid

    def acked(self, pid):
        return pid not in self.inflight

    async def wait_acked(self, pid, timeout_ms=None):
        await self._until(lambda: pid not in self.inflight, timeout_ms or self.timeout_ms, "PUBACK")

    async def subscribe(self, topic, qos=1):
        """Add a subscription (renewed on every connect); sent now if connected."""
        if (topic, qos) not in self.subs:
            w.check_topic(topic, True)
            self.subs.append((topic, qos))
        if self.error is None:
            await self._subscribe([(topic, qos)])

    async def _subscribe(self, topics):
        pid = self._next_pid()
        self._subacks[pid] = None
        try:
            await self._write(w.subscribe(pid, topics))
            await self._until(lambda: self._subacks[pid] is not None, self.timeout_ms, "SUBACK")
            codes = self._subacks[pid]
        finally:
            self._subacks.pop(pid, None)
        if len(codes) != len(topics):
            e = MqttError("mqtt.protocol", "SUBACK for %d of %d topics" % (len(codes), len(topics)))
            self._lost(e)
            raise e
        for (topic, _), code in zip(topics, codes):  # noqa: B905 (lengths checked above)
            if code == 0x80:
                raise MqttError("mqtt.suback", "the broker refused the subscription to " + topic)

    async def recv(self, timeout_ms=None):
        """(topic, payload) of the next received message.

        Messages received before a loss are still returned; then the loss raises. With
        timeout_ms, MqttError("mqtt.timeout") when nothing arrives in time.
        """
        if timeout_ms is None:
            while not self.queue:
                if self.error is not None:
                    raise self.error
                await self._ev.wait()
        else:
            await self._until(lambda: self.queue, timeout_ms, "message")
        return self.queue.pop(0)


def tls_context(ca=None):
    """An ssl.SSLContext for a broker: verifies its certificate against ca (a file) if given.

    The CA file may be PEM or DER; PEM is converted here because some MicroPython builds
    (the unix port's mbedtls among them) parse only DER. Without a CA file the link is
    encrypted but the broker is not authenticated.
    """
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca:
        with open(ca, "rb") as f:
            data = f.read()
        if data.startswith(b"-----BEGIN"):
            data = pem_to_der(data)
        # verify_mode exists on MicroPython's SSLContext (ssl.py); the stubs lack it.
        ctx.verify_mode = ssl.CERT_REQUIRED  # type: ignore[attr-defined]
        ctx.load_verify_locations(cadata=data)
    else:
        ctx.verify_mode = ssl.CERT_NONE  # type: ignore[attr-defined]
    return ctx


def pem_to_der(pem):
    """The DER bytes of the first certificate in a PEM file."""
    from binascii import a2b_base64

    lines = pem.split(b"\n")
    body = []
    inside = False
    for line in lines:
        line = line.strip()
        if line.startswith(b"-----BEGIN"):
            inside = True
        elif line.startswith(b"-----END"):
            break
        elif inside:
            body.append(line)
    if not body:
        raise MqttError("mqtt.arg", "no certificate in the CA file")
    return a2b_base64(b"".join(body))

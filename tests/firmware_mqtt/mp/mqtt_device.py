"""A device driven over stdin, run by the real MicroPython against a real broker.

It is what the application does with a transport (connect, send, recv, reconnect on
OSError), made steerable: the test writes one command per line and reads one JSON event
per line. Config comes as JSON in HCP_MQTT_CFG. Commands:

    run                 an app loop: connect (retrying, paced by the client's own backoff,
                        which the config turns on: backoff_base_ms; firmware/app.py paces
                        with its own, and the transport turns the client's off),
                        print every received packet, reconnect when the link is lost
    send TEXT           transport.send(TEXT) (one QoS 1 packet to up; TEXT has no spaces)
    pub TOPIC TEXT      the raw client: QoS 1 publish to any topic, wait for the PUBACK
    sub TOPIC           the raw client: subscribe (refusals are errors)
    stats               counters and heap
    close               transport.close() (offline state, DISCONNECT) and exit
"""

import asyncio
import gc
import json
import os
import sys

from firmware.net.mqtt_wire import MqttError
from firmware.transport.mqtt import MqttTransport
from protocol.packet import Signer
from protocol.topics import state_payload

CFG = json.loads(os.getenv("HCP_MQTT_CFG"))
KEY = bytes.fromhex(CFG["key"])
SIGNER = Signer(KEY)
ctr = [0]
RUNNING = []


def presence(online, conn):
    ctr[0] += 1
    return state_payload(SIGNER, online, CFG.get("boot", 1), conn, ctr[0])


def say(ev, **kw):
    kw["ev"] = ev
    print(json.dumps(kw))


def err(e):
    return {"code": getattr(e, "code", None) or "os", "msg": str(e), "rc": getattr(e, "rc", 0)}


async def app_loop(t):
    c = t.client
    while True:
        try:
            await t.connect()
            say("connected", conn=t.conn, delay=c.last_delay_ms, present=c.session_present)
            while True:
                say("down", data=str(await t.recv(), "utf-8"))
        except OSError as e:
            say("lost", delay=c.last_delay_ms, **err(e))


async def command(t, line):
    c = t.client
    parts = line.split(" ", 2)
    op = parts[0]
    if op == "run":
        RUNNING.append(asyncio.create_task(app_loop(t)))
    elif op == "connect":
        try:
            await t.connect()
            say("connected", conn=t.conn)
        except OSError as e:
            say("connect_error", **err(e))
    elif op == "send":
        try:
            await t.send(parts[1].encode())
            say("sent", data=parts[1])
        except OSError as e:
            say("send_error", data=parts[1], **err(e))
    elif op == "pub":
        try:
            pid = await c.publish(parts[1], parts[2].encode(), 1)
            await c.wait_acked(pid)
            say("puback", pid=pid)
        except OSError as e:
            say("pub_error", **err(e))
    elif op == "sub":
        try:
            await c.subscribe(parts[1], 1)
            say("subscribed")
        except OSError as e:
            say("sub_error", **err(e))
    elif op == "stats":
        gc.collect()
        say(
            "stats",
            connected=c.is_connected(),
            inflight=len(c.inflight),
            retransmits=c.retransmits,
            dropped=c.dropped,
            connects=c.connects,
            failures=c.failures,
            heap=gc.mem_alloc(),
            free=gc.mem_free(),
        )
    elif op == "close":
        await t.close()
        say("closed")
        return False
    return True


async def main():
    t = MqttTransport(CFG, CFG["hall"], CFG["device"], KEY, presence)
    c = t.client
    for name in ("retry_ms", "backoff_base_ms", "backoff_cap_ms", "timeout_ms", "tick_ms"):
        if name in CFG:
            setattr(c, name, CFG[name])
    gc.collect()
    say("ready", heap=gc.mem_alloc())
    r = asyncio.StreamReader(sys.stdin)
    while True:
        line = await r.readline()
        if not line or not await command(t, str(line, "utf-8").strip()):
            break


try:
    asyncio.run(main())
except MqttError as e:
    say("fatal", **err(e))

"""What the MQTT client alone costs in heap: import, one connection, traffic both ways.

Prints one JSON line of gc.mem_alloc() figures (after gc.collect()), each relative to the
heap before the import. Config (JSON in HCP_MQTT_CFG): host, port, user, password, up,
down. The test publishes to down after the "connected" line.
"""

import asyncio
import gc
import json
import os

gc.collect()
BASE = gc.mem_alloc()
from firmware.net.mqtt import Client  # noqa: E402 (measured: after BASE)

gc.collect()
IMPORTED = gc.mem_alloc() - BASE
CFG = json.loads(os.getenv("HCP_MQTT_CFG"))


async def main():
    c = Client(CFG["user"], CFG["host"], CFG["port"], CFG["user"], CFG["password"], 10)
    c.subs.append((CFG["down"], 1))
    c.will = (CFG["state"], b"x" * 22, 1, True)
    await c.connect()
    gc.collect()
    connected = gc.mem_alloc() - BASE
    print(json.dumps({"ev": "connected"}))
    got = 0
    for i in range(40):
        pid = await c.publish(CFG["up"], b"u" * 60, 1)
        if i % 8 == 7:
            await c.wait_acked(pid)
    while got + c.dropped < 10:  # beyond max_queue unread messages are dropped (counted)
        await c.recv(10000)
        got += 1
    gc.collect()
    after = gc.mem_alloc() - BASE
    await c.disconnect()
    print(json.dumps({"ev": "heap", "imported": IMPORTED, "connected": connected, "after": after}))


asyncio.run(main())

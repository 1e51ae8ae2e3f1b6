"""``hcp sim devices`` with MQTT devices: the real firmware over the agent's embedded broker,
through each device's TCP relay (the network path the control API can pull)."""

from __future__ import annotations

from pathlib import Path

from tests.simulator.simrack import SimHall


def test_mqtt_device_power_cut_and_network_pull(tmp_path: Path) -> None:
    hall = SimHall(tmp_path, count=1, mqtt=True).start()
    dev = hall.specs[0].device_id
    try:
        hall.press(dev, 1)
        assert [r["level"] for r in hall.wait_ratings(dev, 1)] == [1]

        # Pull the network: the relay drops the connection, the device goes offline and
        # keeps its press; the replug lets it reconnect and deliver it.
        d = hall.post(dev, "cable", {"plugged": False}).json()
        assert d["cable"]["plugged"] is False and d["tty"] is None
        hall.wait_state(dev, lambda s: not s["online"], 30)
        hall.press(dev, 2)
        held = hall.wait_state(dev, lambda s: s["outbox_depth"] >= 1)
        assert len(hall.ratings(dev)) == 1

        # A power cut meanwhile: the press survives on flash.
        hall.post(dev, "power", {"on": False})
        hall.post(dev, "power", {"on": True})
        s = hall.wait_state(dev, lambda s: s["boot"] == held["boot"] + 1, 30)
        assert s["outbox_depth"] >= 1 and s["next_seq"] == held["next_seq"]

        before = hall.state(dev)["cable"]["connections"]
        hall.post(dev, "cable", {"plugged": True})
        hall.wait_state(dev, lambda s: s["online"] and s["outbox_depth"] == 0, 60)
        assert [r["level"] for r in hall.wait_ratings(dev, 2)] == [1, 2]
        # Refused while pulled (the rebooted device kept trying); a new one after the replug.
        assert hall.state(dev)["cable"]["connections"] > before
    finally:
        hall.stop()

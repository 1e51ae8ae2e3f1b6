"""SIGKILL the device app at random moments during a rating storm (issue 3: >= 200 kills).

The storm is driven through the control channel (button clicks as fast as the channel
takes them); the device reports each rating it thanked someone for as a "thanked" event,
sent only after Outbox.add() returned. The agent end (a CPython agent-side LinkSession on
the pty) stores every RATING and acknowledges it in some rounds and not in others, so both
halves of "outbox or acked" are exercised. After every reboot, from the device's HELLO:

- every thanked seq is below the device's `next` (never given out again), and
- it is either stored at the agent or still in the outbox (seq >= HELLO `oldest`);

and across the whole run no seq is thanked twice with different content, and at the end
every thanked rating reaches the agent with the content it was thanked with.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

from tests.firmware_app.conftest import Rig
from tests.firmware_app.device import Events

KILLS = {"ci": 200, "dev": 200, "long": 1000}.get(os.environ.get("HCP_TEST_PROFILE", "dev"), 200)


def test_kills_during_a_rating_storm(fw_build: Path, tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("HCP_KILL_SEED", "20261123")))
    rig = Rig(fw_build, tmp_path)
    ag = rig.agent
    thanked: dict[int, dict[str, Any]] = {}
    reused: list[tuple[dict[str, Any], dict[str, Any]]] = []
    hellos_checked = 0
    boots: list[int] = []
    try:
        for _round in range(KILLS):
            ag.ack_ratings = rng.random() < 0.6
            n_hellos = len(ag.hellos)
            rig.device.start()
            ev = None
            ctl = None
            try:
                ev = Events(rig.device.control_port)
                ctl = rig.device.control()
            except OSError:
                pass
            # Verify the reboot from its HELLO (the agent end steps meanwhile).
            ag.run_until(lambda n=n_hellos: len(ag.hellos) > n, 20)
            h = ag.hellos[-1]
            boots.append(h.session if h.session is not None else 0)
            for seq in thanked:
                assert seq < h.next, f"thanked seq {seq} would be given again (next {h.next})"
                assert seq in ag.ratings or seq >= h.oldest, (
                    f"thanked seq {seq} is neither stored at the agent nor in the outbox"
                    f" (oldest {h.oldest})"
                )
            hellos_checked += 1
            # Storm, then SIGKILL at a random moment.
            kill_at = time.monotonic() + rng.uniform(0.0, 0.6)
            b = 0
            while time.monotonic() < kill_at:
                ag.step(0)
                if ctl is not None:
                    try:
                        ctl("click", button=b, ms=1)
                    except (OSError, ValueError):
                        ctl = None
                    b = (b + 1) % 5
            rig.device.kill()
            if ev is not None:
                for e in ev.poll():
                    if e["event"] != "thanked":
                        continue
                    rec = {k: e[k] for k in ("level", "flags", "boot", "ticks")}
                    old = thanked.setdefault(e["seq"], rec)
                    if old != rec:
                        reused.append((old, rec))
                ev.close()
            if ctl is not None:
                ctl.close()
        assert not reused, f"seqs reused: {reused[:3]}"
        assert len(thanked) > KILLS, f"only {len(thanked)} ratings thanked in {KILLS} rounds"
        # Final drain: everything thanked arrives, with the content it was thanked with.
        ag.ack_ratings = True
        rig.device.start()
        ag.run_until(lambda: all(s in ag.ratings for s in thanked), 60)
        for seq, rec in thanked.items():
            r = ag.ratings[seq]
            assert (r.level, r.flags, r.boot, r.ticks) == (
                rec["level"], rec["flags"], rec["boot"], rec["ticks"]
            ), seq  # fmt: skip
        assert not ag.duplicates_differ
        assert hellos_checked == KILLS and boots == sorted(set(boots))  # sessions only grow
        print(f"{KILLS} kills, {len(thanked)} thanked ratings, {len(ag.ratings)} stored")
    finally:
        rig.close()

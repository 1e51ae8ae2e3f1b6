"""Start the device: configuration, identity, boot session, outbox, hardware, the app.

    import firmware.main; firmware.main.run(root)   # root: where the flash is mounted

Returns app.REBOOT after provisioning, and after an unexpected exception (printed first:
the outbox and counters are on flash, so a reset loses nothing); the caller resets:
machine.reset() on a board, a fresh event loop on the unix port. A configuration error is
printed and returns None, never a boot loop: the device then waits for a technician
(docs/technician.md "Recovering").
"""

import asyncio
import os
import sys

from firmware import boot, config

FONT_PATHS = ("/fonts/hcp12.bin", "/flash/fonts/hcp12.bin")
CRASH_PAUSE_MS = 1000


def _font(root):
    from firmware.display.font import Font

    paths = [root + "/fonts/hcp12.bin"]
    env = os.getenv("HCP_FONT") if sys.platform == "linux" else None
    if env:
        paths.insert(0, env)
    for p in paths + list(FONT_PATHS):
        try:
            return Font(p)
        except OSError:
            pass
    print("hcp: no font file (fonts/hcp12.bin): the screens stay blank")
    return None


def start(root):
    """Build the App (without running it): the selftest and benchmarks use this too."""
    import firmware.hw as hwmod
    from firmware.app import App
    from firmware.storage.counter import Counter
    from firmware.storage.outbox import Outbox

    dev = config.load_device(root)
    profile = config.load_profile(root, dev["board"])
    ident, key = config.load_identity(root)
    try:  # noqa: SIM105 (MicroPython has no contextlib)
        os.mkdir(root + "/hcp")
    except OSError:
        pass
    hw = hwmod.load(profile, dev["kind"], dev)
    session = Counter(root + "/hcp/boot").bump(ident["session_base"] if ident else 0)
    ob = profile.get("storage", {}).get("outbox", {})
    outbox = Outbox(root + "/hcp/outbox", ob.get("segments", 64), ob.get("records", 16))
    if ident is not None and outbox.next_seq() < ident["seq_base"]:
        outbox.set_next(ident["seq_base"])
    font = None if dev["kind"] == "qr" and os.getenv("HCP_NO_FONT") else _font(root)
    app = App(hw, dev, ident, key, session, outbox, root, font)
    wdt = profile.get("watchdog", {}).get("timeout_ms", 8000)
    return app, wdt


def run(root=""):
    if boot.SAFE:
        return None
    try:
        app, wdt = start(root)
    except config.ConfigError as e:
        print("hcp: configuration error:", e)
        return None
    try:
        return asyncio.run(app.run(wdt))
    except Exception as e:  # a bug must not leave the device dead: log it and reboot
        sys.print_exception(e)
        import time

        time.sleep_ms(CRASH_PAUSE_MS)  # a crash at start must not spin: the watchdog waits
        return "reboot"

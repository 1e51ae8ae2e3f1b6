"""Start the device: configuration, identity, boot session, outbox, hardware, the app.

    import firmware.main; firmware.main.run(root)   # root: where the flash is mounted

Returns app.REBOOT after provisioning, and after an unexpected exception (printed first:
the outbox and counters are on flash, so a reset loses nothing); the caller resets:
machine.reset() on a board, a fresh event loop on the unix port. A configuration error is
printed and returns None, never a boot loop: the device then waits for a technician
(docs/technician.md "Recovering").
"""

import asyncio
import gc
import os
import sys

from micropython import const

# _NAME = const(...): inlined by mpy-cross, so no heap for the name or its value
_FONT_PATHS = const(("/fonts/hcp12.bin", "/flash/fonts/hcp12.bin"))
_CRASH_PAUSE_MS = const(1000)


def _font(root):
    from firmware.display.font import Font

    paths = [root + "/fonts/hcp12.bin"]
    env = os.getenv("HCP_FONT") if sys.platform == "linux" else None
    if env:
        paths.insert(0, env)
    for p in paths + list(_FONT_PATHS):
        try:
            return Font(p)
        except OSError:
            pass
    print("hcp: no font file (fonts/hcp12.bin): the screens stay blank")
    return None


def start(root):
    """Build the App (without running it): the selftest and benchmarks use this too."""
    # Every module first, while the heap is still in one piece (the UI machine too, which
    # App imports later): loaded between the configuration's objects they need a larger heap.
    import firmware.hw as hwmod
    import firmware.ui.machine  # noqa: F401 (App imports it)
    from firmware import config
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
    font = None if dev["kind"] == "qr" and os.getenv("HCP_NO_FONT") else _font(root)
    if font is not None:  # the canvas (7.2 KB on the QR unit) while a block that big is free
        gc.collect()
        hw.make_display()
    session = Counter(root + "/hcp/boot").bump(ident["session_base"] if ident else 0)
    ob = profile.get("storage", {}).get("outbox", {})
    outbox = Outbox(root + "/hcp/outbox", ob.get("segments", 64), ob.get("records", 16))
    if ident is not None and outbox.next_seq() < ident["seq_base"]:
        outbox.set_next(ident["seq_base"])
    app = App(hw, dev, ident, key, session, outbox, root, font)
    wdt = profile.get("watchdog", {}).get("timeout_ms", 8000)
    return app, wdt


# Modules only the boot needs: forgotten once the app is built, so their code is garbage
# (a later provisioning imports config again). About 7 KB on the unix port.
_BOOT_ONLY = const(("firmware.config", "firmware.boot", "firmware.storage.counter"))


def _unload(names):
    for name in names:
        if sys.modules.pop(name, None) is not None:
            cut = name.rfind(".")
            parent = sys.modules.get(name[:cut])
            if parent is not None and hasattr(parent, name[cut + 1 :]):
                delattr(parent, name[cut + 1 :])


def _build(root):
    from firmware import config

    try:
        return start(root)
    except config.ConfigError as e:
        print("hcp: configuration error:", e)
        return None
    finally:
        _unload(_BOOT_ONLY)


def run(root=""):
    from firmware import boot

    if boot.SAFE:
        return None
    del boot
    built = _build(root)
    if built is None:
        return None
    app, wdt = built
    del built
    try:
        return asyncio.run(app.run(wdt))
    except Exception as e:  # a bug must not leave the device dead: log it and reboot
        sys.print_exception(e)
        import time

        time.sleep_ms(_CRASH_PAUSE_MS)  # a crash at start must not spin: the watchdog waits
        return "reboot"

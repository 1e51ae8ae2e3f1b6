"""Safe boot: a button held at power-on skips the application (issue 3 "Safety").

A board's /boot.py is three lines that call check() inside try/except, so nothing here can
stop the board from reaching its REPL: a technician holding the safe-boot button (the
profile's `buttons.safe_boot`, ① by default) gets a device that runs no application and
can be reflashed with mpremote. On the unix port the simulator says which button is held
with HCP_HOLD (the index). main.py asks `boot.SAFE` before it starts anything.
"""

SAFE = False


def check(root=""):
    global SAFE
    SAFE = _held(root)
    if SAFE:
        print("hcp: safe mode: a button was held at boot; the application is not started")
    return SAFE


def _held(root):
    import sys

    if sys.platform == "linux":
        import os

        return os.getenv("HCP_HOLD") is not None
    try:
        from firmware import config

        dev = config.load_device(root)
        prof = config.load_profile(root, dev["board"])
        b = prof["buttons"]
        pin_no = b["pins"][b.get("safe_boot", 0)]
        active_low = b.get("active_low", True)
    except Exception:  # no readable configuration: the reference boards' first button
        pin_no = None
        active_low = True
    from machine import Pin

    if pin_no is None:
        return False
    p = Pin(pin_no, Pin.IN, Pin.PULL_UP if active_low else Pin.PULL_DOWN)
    return (p.value() == 0) == active_low

"""The hardware layer: one small interface, one implementation per kind of board.

    hw = firmware.hw.load(profile, kind, cfg)   # unix.py (unix-sim) or board.py (machine)
    hw.raw_buttons()      # bit i set while button i is held (debounce: buttons.py)
    hw.display            # .fb (framebuf), .width, .height, .show(); None for no panel
    hw.led(on) / hw.buzz(ms)
    hw.wdt_start(ms) / hw.wdt_feed()
    hw.free_heap()
    await hw.start(app)   # the hardware's own tasks (unix: the control channel)
    hw.event(name, **f)   # something a tester may watch (unix: pushed to subscribers)

Each implementation is its own module and is imported only by the board that uses it
(STYLE.md habit 5): a Pico never loads the simulator's control channel.
"""


def load(profile, kind, cfg):
    if profile.get("port") == "unix":
        from firmware.hw.unix import UnixHardware

        return UnixHardware(profile, kind, cfg)
    from firmware.hw.board import BoardHardware

    return BoardHardware(profile, kind, cfg)

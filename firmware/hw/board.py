"""Boards with `machine` (ESP32-S3, Pico W): pins, I2C/SPI panels, PWM buzzer, hardware WDT.

Written from the board profiles in hardware/boards/ and kept thin: every decision is in the
profile. Cannot run on the unix port; the unix-sim implementation (unix.py) carries the same
interface and is what the tests exercise.
"""

import gc

# Bound at run time: the type check runs against the unix port's `machine`, which has no
# WDT, PWM or pin modes; the boards' ports have them all.
_m = __import__("machine")
I2C = _m.I2C
PWM = _m.PWM
SPI = _m.SPI
WDT = _m.WDT
Pin = _m.Pin


class BoardHardware:
    def __init__(self, profile, kind, cfg):
        self._display_spec = profile["displays"][kind]  # not the whole profile: ~7 KB
        self.kind = kind
        b = profile["buttons"]
        pull = Pin.PULL_UP if b.get("pull", "up") == "up" else Pin.PULL_DOWN
        self._pins = [] if kind == "qr" else [Pin(p, Pin.IN, pull) for p in b["pins"]]
        self._active_low = b.get("active_low", True)
        self.n_buttons = len(self._pins)
        led = profile.get("led") or {}
        self._led = Pin(led["pin"], Pin.OUT) if "pin" in led else None
        self._led_low = led.get("active_low", False)
        bz = profile.get("buzzer") or {}
        self._bz_pin = bz.get("pin")
        self._bz_freq = bz.get("freq_hz", 2700)
        self._wdt = None
        self.display = None

    def make_display(self):
        d = self._display_spec
        if d["driver"] == "ssd1306":
            from firmware.display.ssd1306 import SSD1306

            c = d["i2c"]
            i2c = I2C(c["id"], sda=Pin(c["sda"]), scl=Pin(c["scl"]), freq=c.get("freq", 400000))
            self.display = SSD1306(i2c, d["width"], d["height"], c.get("address", 0x3C))
        else:
            from firmware.display.st7789 import ST7789

            c = d["spi"]
            spi = SPI(c["id"], baudrate=c.get("baudrate", 40000000), sck=Pin(c["sck"]),
                      mosi=Pin(c["mosi"]))  # fmt: skip
            rst = Pin(c["rst"], Pin.OUT) if c.get("rst") is not None else None
            if c.get("backlight") is not None:
                Pin(c["backlight"], Pin.OUT).value(1)
            self.display = ST7789(
                spi, Pin(c["cs"], Pin.OUT), Pin(c["dc"], Pin.OUT), rst,
                d["width"], d["height"], d.get("x_offset", 0), d.get("y_offset", 0),
                invert=d.get("invert", True),
            )  # fmt: skip
        return self.display

    def raw_buttons(self):
        m = 0
        for i in range(len(self._pins)):
            v = self._pins[i].value()
            if (v == 0) == self._active_low:
                m |= 1 << i
        return m

    def led(self, on):
        if self._led is not None:
            self._led.value(1 if bool(on) != self._led_low else 0)

    def buzz(self, ms):
        if self._bz_pin is None:
            return
        import time

        p = PWM(Pin(self._bz_pin), freq=self._bz_freq, duty_u16=32768)
        time.sleep_ms(ms)  # short beeps only (selftest); the loop tolerates it
        p.deinit()

    def free_heap(self):
        return gc.mem_free()

    def wdt_start(self, ms):
        self._wdt = WDT(timeout=ms)

    def wdt_feed(self):
        if self._wdt is not None:
            self._wdt.feed()

    async def start(self, app):
        return None

    def event(self, name, **fields):
        pass

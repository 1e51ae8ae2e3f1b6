"""Displays: framebuf canvases, the panels' drivers, and drawing (text, QR).

- font.py     the CJK bitmap font on flash, read glyph by glyph (firmware/fonts/)
- pen.py      text (measure, wrap, "…"), scaled glyphs, QR matrices with quiet zone
- ssd1306.py  128x64 mono OLED over I2C (evaluator)
- st7789.py   240x240 RGB565 LCD over SPI with a 1-bit canvas (QR unit, combined unit)
- sim.py      the unix-port target: publishes the canvas bytes for the simulator

Each display object has .fb (a framebuf.FrameBuffer, 1 = ink), .width, .height, .show()
and .power(on). Nothing is imported here: a device loads only its own driver.
"""

"""micropython.const on both Pythons.

On MicroPython, mpy-cross inlines a module-level ``_NAME = const(value)`` wherever _NAME
is used, so the name costs no heap (no qstr, no globals entry); CPython gets a plain
function returning its argument.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x

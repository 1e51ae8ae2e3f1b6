"""const() for modules that CPython imports too (the simulator, tools and tests).

On MicroPython, mpy-cross inlines `_NAME = const(...)`: neither the name nor the value takes
heap. On CPython const() is the identity.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x

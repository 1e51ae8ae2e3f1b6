"""Run the portable test modules under MicroPython (pytest runs the same files on CPython).

    MICROPYPATH=.:tests/portable micropython -X heapsize=64k tests/portable/run.py [module ...]

A test is a module-level function named test_*; it passes if it returns without
raising. Prints one line per failure and a closing "N passed, N failed" line;
exits 1 if anything failed.
"""

import gc
import os
import sys


def _modules(names):
    if names:
        return names
    here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    return sorted(f[:-3] for f in os.listdir(here) if f.startswith("test_") and f.endswith(".py"))


def main(argv):
    passed = failed = 0
    for name in _modules(argv):
        mod = __import__(name)
        for attr in sorted(dir(mod)):
            if not attr.startswith("test_"):
                continue
            fn = getattr(mod, attr)
            if not callable(fn):
                continue
            gc.collect()
            try:
                fn()
                passed += 1
            except Exception as e:  # report every failure, keep going
                failed += 1
                print("FAILED %s.%s: %s: %s" % (name, attr, type(e).__name__, e))
                sys.print_exception(e)
        del sys.modules[name]
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


sys.exit(main(sys.argv[1:]))

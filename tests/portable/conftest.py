import os
import sys

# Portable tests import their helpers as a top-level module `check`, as on MicroPython.
sys.path.insert(0, os.path.dirname(__file__))

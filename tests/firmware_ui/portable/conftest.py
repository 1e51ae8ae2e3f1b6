import os
import sys

# The portable UI tests import their fixtures as top-level modules, as on MicroPython.
sys.path.insert(0, os.path.dirname(__file__))

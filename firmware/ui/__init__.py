"""The device UI: the state machine (machine.py) and what each screen shows (screens.py).

Nothing is imported here, so a device loads only the modules it uses (STYLE.md habit 5):
`from firmware.ui.machine import UI`, `from firmware.ui.screens import make_screens`.
"""

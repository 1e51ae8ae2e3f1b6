"""Network clients the firmware runs over asyncio streams (MQTT 3.1.1).

Imported lazily: a serial-only device never loads anything from here.
"""

"""The link transport interface: how the app moves signed packets to and from its agent.

Strategy: the link session (protocol/session.py) is sans-IO; a transport only carries whole
packets. Two implementations, chosen by the device configuration's `transport.type`, each
imported lazily by the app so a device loads only the one it uses:

    serial.py   COBS frames over a UART or (unix port) a pty/tty   {"type": "serial", ...}
    mqtt.py     MQTT 3.1.1 topics of docs/protocol.md §9            {"type": "mqtt", ...}

Every method may raise OSError: the link is lost (or cannot be opened), and the app closes
the transport and connects again after a backoff. Every wait has a timeout in the app.
"""


class Transport:
    async def connect(self):
        """Open the link; raises OSError if it cannot."""
        raise NotImplementedError

    async def send(self, packet):
        """Send one signed packet (bytes); OSError when the link is lost."""
        raise NotImplementedError

    async def recv(self):
        """The next received packet (bytes); OSError when the link is lost."""
        raise NotImplementedError

    async def close(self):
        raise NotImplementedError

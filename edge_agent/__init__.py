"""The hall edge agent: device links, binding engine, case-system adapter, durable outbox.

One agent runs per service hall (DESIGN.md). Modules, one concern each:

- ``config``: agent.toml, validated at start;
- ``store``, ``schema``: the SQLite store (WAL, synchronous=FULL, one writer, migrations);
- ``registry``: windows, staff accounts, devices (keys never leave it);
- ``binding``: the case lifecycle and the verdict on each press, as tables (pure);
- ``cases``, ``ratings``, ``outbox``, ``hubitems``: what each event and press does to
  the store, and what the hub will receive;
- ``qr``: signed case tokens and QR matrices;
- ``wire``: the typed face of protocol/;
- ``device_session``: one device's link session above the transport (durable acks, state);
- ``serial_link``, ``mqtt_link``, ``downlink``: device links over serial ports and through
  the hall's MQTT broker;
- ``broker``, ``embedded_broker``: mosquitto's password/ACL files from the registry, and
  the pure-Python demo broker with the same accounts;
- ``service``, ``api``, ``metrics``, ``polling``: the hall service, its HTTP API, metrics
  and the extension point for polled case systems;
- ``agent``: the process; ``logs``: structured logs with masks.

Nothing is imported here, so ``import edge_agent.config`` stays light (the CLI's help).
"""

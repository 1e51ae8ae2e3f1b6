"""The hall simulator (DESIGN.md: simulator/): a service hall's day, played against a real agent.

- ``scenario``: the hall as data (TOML), validated with the key's path in every error;
- ``plan``: the discrete-event model, a scenario and a seed to the day's events (reproducible);
- ``engine``: the events on a simulated clock, through the agent's case API and the press path;
- ``devices``: the press path (``VirtualDevice``) and the CPython device peers on ptys;
- ``firmware``: the same press path through the real firmware on the MicroPython unix port;
- ``accounting``: the agent's store against the run's ground truth.
- ``peer``: the CPython device peer (the protocol session, device role, on a pty);
- ``vdevice``: one real-firmware device process (build, flash image, control channel);
- ``bridge``: the serial cable and the MQTT device's network path, with their faults;
- ``rack``: N virtual devices (``hcp sim devices``), power cuts, cables, frames as PNG;
- ``control_api``: the HTTP control API and the technician UI (``ui/index.html``).

Modules are imported where used (``hcp sim`` stays fast to start).
"""

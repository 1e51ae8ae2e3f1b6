"""The ``hcp`` command line (CPython): one command registry, see tools/cli.py.

Each command lives in its own module here (tools/flash.py, tools/agent.py, ...) and adds
itself with one ``register(...)`` call. Commands for the agent, hub and simulator live here
too, calling into those packages: tools may use every package, but edge_agent, hub and
simulator must not import tools (the dependency rule in DESIGN.md).
"""

"""A pure-Python MQTT broker for demos and pip-only installs (amqtt), with the hall's accounts.

Strategy: production halls run mosquitto with the files edge_agent.broker writes. A demo
(``hcp demo``, a laptop) should not need a system package, so the agent can start amqtt
in its own event loop (``[mqtt] embedded = true``) or as a separate process
(``python -m edge_agent.embedded_broker``), with the same accounts and rules as mosquitto:

- **Authentication** (``HallAuth``): username and password must match an account. In the
  agent's process the accounts are the live registry (``RegistryAccounts``: a device with a
  key and no quarantine, password topics.broker_password(key); the agent's own account),
  so ``hcp agent add-device`` and ``quarantine`` take effect at the device's next connect.
  As a separate process it reads the mosquitto password_file/acl_file that
  ``hcp agent broker-files`` wrote (``FileAccounts``; ``$7$`` hashes checked as mosquitto
  does). Anonymous clients are refused.
- **Topic ACLs** (``HallTopics``): publish needs a ``write`` rule, subscribe and delivery a
  ``read`` rule (topics.acl_rules / agent_acl_rules). A subscription filter is allowed only
  if every topic it could match is allowed ('#' only where a rule has '#').
- **Last Will**: amqtt publishes a will without consulting the topic plugins, so HallAuth
  refuses a CONNECT whose will topic the account may not write: a device cannot plant an
  "offline" on another device's state topic.

What it does *not* do, said plainly: no TLS unless configured through amqtt itself, no
persistence (like the test mosquitto), no connection or rate limits per account, and it is
a demo broker: a hall with more than a few dozen devices should run mosquitto.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# amqtt ships no type information; its classes are Any to mypy.
from amqtt.broker import Broker  # type: ignore[import-untyped]
from amqtt.contexts import Action, BaseContext  # type: ignore[import-untyped]
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin  # type: ignore[import-untyped]
from amqtt.session import Session  # type: ignore[import-untyped]

from edge_agent import registry
from edge_agent.broker import check_password, device_password
from edge_agent.store import Database
from protocol import topics

log = logging.getLogger("hcp.agent.broker")

Rules = list[tuple[str, str]]  # (read|write, topic pattern)


class Accounts(Protocol):
    async def check(self, username: str, password: str) -> bool: ...

    async def rules(self, username: str) -> Rules: ...


def _agent_rules(hall: str) -> Rules:
    rules: Rules = topics.agent_acl_rules(hall)  # type: ignore[no-untyped-call]
    return rules


def _device_rules(hall: str, device: str) -> Rules:
    rules: Rules = topics.acl_rules(hall, device)  # type: ignore[no-untyped-call]
    return rules


class RegistryAccounts:
    """The live registry of the agent's store, plus the agent's own account."""

    def __init__(self, db: Database, *, hall: str, agent_user: str, agent_secret: str) -> None:
        self.db = db
        self.hall = hall
        self.agent_user = agent_user
        self._agent_secret = agent_secret

    async def _device_password(self, username: str) -> str | None:
        dev = await self.db.run(registry.device, username)
        if dev is None or dev.quarantine is not None or not dev.has_key:
            return None
        key = await self.db.run(registry.device_key, username)
        return device_password(key) if key is not None else None

    async def check(self, username: str, password: str) -> bool:
        if username == self.agent_user:
            return secrets.compare_digest(password, self._agent_secret)
        expected = await self._device_password(username)
        return expected is not None and secrets.compare_digest(password, expected)

    async def rules(self, username: str) -> Rules:
        if username == self.agent_user:
            return _agent_rules(self.hall)
        if await self._device_password(username) is None:
            return []
        return _device_rules(self.hall, username)


class FileAccounts:
    """mosquitto's password_file and acl_file (as edge_agent.broker writes them)."""

    def __init__(self, password_file: Path, acl_file: Path) -> None:
        self.hashes: dict[str, str] = {}
        for line in password_file.read_text(encoding="utf-8").splitlines():
            name, sep, hashed = line.partition(":")
            if sep and name:
                self.hashes[name] = hashed
        self.acl: dict[str, Rules] = {}
        user: str | None = None
        for line in acl_file.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == "user":
                user = words[1]
                self.acl.setdefault(user, [])
            elif len(words) == 3 and words[0] == "topic" and user is not None:
                self.acl[user].append((words[1], words[2]))

    async def check(self, username: str, password: str) -> bool:
        hashed = self.hashes.get(username)
        return hashed is not None and check_password(password, hashed)

    async def rules(self, username: str) -> Rules:
        return self.acl.get(username, [])


# Plugins get their Config through dacite from the broker's config dict; the accounts
# object itself is handed over in this table, keyed by a name in that config.
_ACCOUNTS: dict[str, Accounts] = {}


def _filter_allowed(requested: str, allowed: str) -> bool:
    """Whether every topic the filter ``requested`` can match is matched by ``allowed``."""
    req, rule = requested.split("/"), allowed.split("/")
    for i, level in enumerate(req):
        if i >= len(rule):
            return False
        if rule[i] == "#":
            return True
        if level == "#":
            return False  # the rule is narrower than a multi-level wildcard
        if rule[i] != "+" and rule[i] != level:
            return False  # (a '+' in the request is allowed only where the rule has '+')
    return len(req) == len(rule)


def allowed(rules: Rules, topic: str, access: str) -> bool:
    return any(a == access and _filter_allowed(topic, t) for a, t in rules)


class HallAuth(BaseAuthPlugin):  # type: ignore[misc]
    """Username/password against the hall's accounts; the will topic must be writable."""

    @dataclass
    class Config:
        accounts: str = "default"

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.name: str = self.config.accounts

    async def authenticate(self, *, session: Session) -> bool | None:
        accounts = _ACCOUNTS.get(self.name)
        if accounts is None or not session.username or session.password is None:
            return False
        if not await accounts.check(session.username, str(session.password)):
            log.info("broker.auth_refused", extra={"fields": {"user": session.username[:40]}})
            return False
        if session.will_flag and not allowed(
            await accounts.rules(session.username), session.will_topic or "", "write"
        ):
            log.info("broker.will_refused", extra={"fields": {"user": session.username}})
            return False
        return True


class HallTopics(BaseTopicPlugin):  # type: ignore[misc]
    """publish needs write, subscribe and delivery need read (topics.acl_rules)."""

    @dataclass
    class Config:
        accounts: str = "default"

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.name: str = self.config.accounts

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Any = None
    ) -> bool | None:
        accounts = _ACCOUNTS.get(self.name)
        if accounts is None or session is None or not session.username or not topic:
            return False
        access = "write" if action == Action.PUBLISH else "read"
        return allowed(await accounts.rules(session.username), topic, access)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class EmbeddedBroker:
    """amqtt on host:port with the hall's accounts, in the caller's event loop."""

    accounts: Accounts
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port, chosen at start
    name: str = field(default_factory=lambda: secrets.token_hex(4))
    _broker: Broker | None = None

    async def start(self) -> int:
        if self.port == 0:
            self.port = free_port(self.host)
        _ACCOUNTS[self.name] = self.accounts
        plugin = {"accounts": self.name}
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                f"{__name__}.HallAuth": plugin,
                f"{__name__}.HallTopics": plugin,
            },
        }
        self._broker = Broker(config)
        await self._broker.start()
        log.info("broker.started", extra={"fields": {"host": self.host, "port": self.port}})
        return self.port

    async def stop(self) -> None:
        if self._broker is not None:
            with contextlib.suppress(Exception):
                await self._broker.shutdown()
            self._broker = None
        _ACCOUNTS.pop(self.name, None)


async def serve(broker: EmbeddedBroker, until: Callable[[], Awaitable[Any]]) -> None:
    await broker.start()
    try:
        await until()
    finally:
        await broker.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m edge_agent.embedded_broker``: the demo broker as its own process."""
    p = argparse.ArgumentParser(description="hcp demo MQTT broker (amqtt) with hall accounts")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--password-file", type=Path, required=True)
    p.add_argument("--acl-file", type=Path, required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    broker = EmbeddedBroker(
        FileAccounts(args.password_file, args.acl_file), host=args.host, port=args.port
    )

    async def forever() -> None:
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(broker, forever))


if __name__ == "__main__":
    main()

"""The agent process: one asyncio loop running the HTTP API, the device links and the sweeper.

Strategy: ``Agent`` wires the parts (store → service → links → API) and ``run()`` keeps them
running until SIGTERM or SIGINT, then stops them in reverse order: the HTTP server stops
taking requests, the link tasks are cancelled (their reader threads end within
READ_TIMEOUT_S), the store's writer thread finishes the transaction in hand and closes.
Nothing is acknowledged that is not committed, so a kill -9 at any moment is also safe;
graceful stop only makes it tidy.

uvicorn is embedded (``uvicorn.Server.serve`` as a task) rather than run as the main
program, because the links must share its event loop and store. Its own signal handling is
switched off (it would re-raise the signal after serving and kill the process before the
store is closed); the agent installs its own.

Start order: store, then device links, then the HTTP API, then the hub sync. FastAPI and
uvicorn take ~2 s to import on a small hall box; the links (~0.3 s of imports) are up and
storing ratings while they load in a worker thread, so devices re-sync quickly after a
restart or a crash. The sync starts last: its batches would compete with those imports for
the interpreter, and the outbox keeps everything meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import socket
from typing import TYPE_CHECKING, Any

from edge_agent.config import AgentConfig
from edge_agent.errors import AgentError, Msg
from edge_agent.logs import log_event
from edge_agent.serial_link import DeviceLink
from edge_agent.service import HallService
from edge_agent.store import Database
from edge_agent.sync import HubSync

if TYPE_CHECKING:
    import uvicorn

    from edge_agent.mqtt_link import MqttLinks

log = logging.getLogger("hcp.agent")


def _http_server(app: Any, host: str, port: int) -> uvicorn.Server:
    """uvicorn's server for app, with its signal handling switched off (imports uvicorn)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:  # the agent handles signals itself
            yield

    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    return Server(config)


class Agent:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.db = Database(cfg.store_path)
        self.service = HallService(cfg, self.db)
        self.links = [DeviceLink(self.service, link) for link in cfg.serial]
        self.mqtt: MqttLinks | None = None  # MQTT devices through the hall broker
        if cfg.mqtt is not None:
            from edge_agent.mqtt_link import MqttLinks  # paho only where MQTT is configured

            serial = frozenset(link.device for link in cfg.serial)
            self.mqtt = MqttLinks(self.service, cfg.mqtt, serial_devices=serial)
        self.sync = HubSync(cfg, self.db) if cfg.hub.url else None  # edge_agent.sync
        self.server: uvicorn.Server | None = None
        self.port: int | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    def stop(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.should_exit = True

    def _listen(self) -> socket.socket:
        """The HTTP socket, bound before anything starts: a taken port stops the start with
        a clear error (uvicorn would call sys.exit inside the event loop)."""
        host, port = self.cfg.listen_host, self.cfg.listen_port
        try:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
            sock = socket.socket(info[0], socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(info[4])
            sock.listen(128)
        except OSError as e:
            raise AgentError(
                "agent.listen",
                Msg("无法在 {a} 上监听：{e}", "cannot listen on {a}: {e}").fill(
                    a=f"{host}:{port}", e=e.strerror or e
                ),
            ) from e
        sock.set_inheritable(False)
        return sock

    async def run(self, *, install_signals: bool = True) -> None:
        if install_signals:  # first: a SIGTERM during start-up still stops cleanly
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        listener = self._listen()
        try:
            self.db.open()
        except BaseException:
            listener.close()
            raise
        try:
            await self.service.start()
            for link in self.links:
                self._tasks.append(asyncio.create_task(link.run(), name=f"link-{link.device_id}"))
            self._tasks.append(asyncio.create_task(self.service.run_sweeper(), name="sweeper"))
            if self.mqtt is not None:
                self._tasks.append(asyncio.create_task(self.mqtt.run(), name="mqtt"))
            api = await asyncio.to_thread(importlib.import_module, "edge_agent.api")
            await asyncio.to_thread(importlib.import_module, "uvicorn")
            app = api.create_app(self.service, sync=self.sync)
            self.server = _http_server(app, self.cfg.listen_host, self.cfg.listen_port)
            server_task = asyncio.create_task(self.server.serve([listener]), name="http")
            while not self.server.started and not server_task.done():
                await asyncio.sleep(0.01)
            if server_task.done():
                server_task.result()  # raises the bind error
                raise OSError(f"HTTP server did not start on {self.cfg.listen_port}")
            self.port = int(listener.getsockname()[1])
            if self.sync is not None:  # after the API's imports: a backlog drains faster
                self._tasks.append(asyncio.create_task(self.sync.run(), name="hub-sync"))
            log_event(
                log,
                "agent.started",
                hall=self.cfg.hall_id,
                listen=f"{self.cfg.listen_host}:{self.port}",
                links=len(self.links),
                store=str(self.cfg.store_path),
            )
            stop_wait = asyncio.create_task(self._stop.wait())
            await asyncio.wait({server_task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            self.server.should_exit = True
            await server_task
            stop_wait.cancel()
        finally:
            listener.close()
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.db.close()
            log_event(log, "agent.stopped", hall=self.cfg.hall_id)


def run_agent(cfg: AgentConfig) -> None:
    """Run until SIGTERM/SIGINT (``hcp agent run``)."""
    asyncio.run(Agent(cfg).run())

"""Running the emulator: in this event loop (:class:`EmulatorServer`) or in a thread of its own
(:class:`EmulatorThread`, for synchronous code such as CLI tests).

Rules this module enforces:

* The server listens on one socket it binds itself; port 0 picks a free port, and
  :attr:`EmulatorServer.base_url` always names the real one.
* Shutting down waits at most ``shutdown_timeout`` seconds for calls in flight (slow faults),
  then cancels them.
* No access log is written (query strings carry secrets).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from types import TracebackType

from aiohttp import web

from agupshup.emulator.app import API_PATH, make_app
from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.core import Emulator

__all__ = ["EmulatorServer", "EmulatorThread"]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


class EmulatorServer:
    """An emulator served on ``host:port`` by the running event loop.

    ``async with EmulatorServer(config) as server:`` → ``server.base_url``, ``server.emulator``.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        emulator: Emulator | None = None,
        shutdown_timeout: float = 1.0,
    ) -> None:
        self.emulator = emulator if emulator is not None else Emulator(config)
        self.host = host
        self._port = port
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """``http://host:port``, without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def url(self) -> str:
        """The API endpoint: ``{base_url}/GupshupAPI/rest``."""
        return self.base_url + API_PATH

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("already started")
        sock = _bind(self.host, self._port)
        self._port = sock.getsockname()[1]
        runner = web.AppRunner(
            make_app(self.emulator), access_log=None, shutdown_timeout=self._shutdown_timeout
        )
        try:
            await runner.setup()
        except BaseException:
            sock.close()
            raise
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            await runner.cleanup()
            sock.close()
            raise
        self._runner = runner

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"EmulatorServer({self.base_url!r})"


class EmulatorThread:
    """An :class:`EmulatorServer` running in a daemon thread with its own event loop.

    ``with EmulatorThread(config) as server:`` → ``server.base_url``, ``server.emulator``.
    The emulator's state belongs to that thread; read it from others only while it is idle.
    """

    def __init__(
        self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.server = EmulatorServer(config, host=host, port=port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def url(self) -> str:
        return self.server.url

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._main, name="gupshup-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the emulator did not start")
        if self._error is not None:
            raise self._error

    def stop(self, timeout: float = 10.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> EmulatorThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.close()

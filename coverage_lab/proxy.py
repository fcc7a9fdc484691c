"""A TCP proxy in front of ARI that a test can break the way networks break.

`stall()` stops forwarding while the connections stay open (a NAT or a
firewall that lost its state: the engine hears nothing and must notice by
itself); `drop_all()` cuts every connection (a dropped WebSocket); `flow()`
ends a stall the way such a network does, by resetting what was stalled.
Used by the chaos suite and the integration tests.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class AriProxy:
    """Forwards 127.0.0.1:`port` to `target`, one thread pair per connection."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target)
            except OSError:  # Asterisk is down (restarting): refuse this one
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                self._flowing.wait()
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def stall(self) -> None:
        """Stop forwarding in both directions; the connections stay open."""
        self._flowing.clear()

    def drop_all(self) -> None:
        """Cut every connection now (the client sees its WebSocket closed)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def flow(self) -> None:
        """Cut the stalled connections (as a NAT would reset them) and forward again."""
        self.drop_all()
        self._flowing.set()

    def close(self) -> None:
        self.server.close()
        self.flow()

"""Reports of models another replica owns, fetched from that replica (scale-out).

In scale-out each model is evaluated by the one replica that owns its summaries partition,
and only that replica's snapshot holds its report. A ``report_url`` reaches whichever replica
the Service picks, so a replica asked for a model it does not own asks its peers
(``http.peers``: names that resolve to every replica, such as a headless Service) and hands
back the first page one of them has. A forwarded request carries :data:`FORWARDED_HEADER`, and
a replica never forwards such a request again, so a request makes one round at most.
"""

from __future__ import annotations

import logging
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass

log = logging.getLogger(__name__)

FORWARDED_HEADER = "X-Model-Health-Forwarded"
FORWARDED_ENVIRON = "HTTP_X_MODEL_HEALTH_FORWARDED"
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Fetched:
    status: str
    content_type: str
    body: bytes


class Peers:
    """The replicas ``spec`` names (``host:port[,host:port…]``), asked in turn."""

    def __init__(self, spec: str, token: str | None = None, timeout_s: float = TIMEOUT_SECONDS) -> None:
        self.addresses = [_host_port(entry.strip()) for entry in spec.split(",") if entry.strip()]
        self.token = token
        self.timeout_s = timeout_s

    def fetch(self, path_and_query: str) -> Fetched | None:
        """The first peer's 200 answer for ``path_and_query``; None when no peer has it."""
        headers = {FORWARDED_HEADER: "1"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        for url in self._urls(path_and_query):
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.timeout_s) as r:
                    return Fetched(f"{r.status} {r.reason}", r.headers.get("Content-Type", ""), r.read())
            except urllib.error.HTTPError as answer:
                answer.close()  # 404 from a replica that does not own it either: ask the next
            except OSError as error:
                log.info("report peer %s did not answer: %s", url, error)
        return None

    def _urls(self, path_and_query: str) -> list[str]:
        urls: list[str] = []
        for host, port in self.addresses:
            try:
                found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as error:
                log.info("report peers %s:%d do not resolve: %s", host, port, error)
                continue
            for address in dict.fromkeys(str(info[4][0]) for info in found):
                name = f"[{address}]" if ":" in address else address
                urls.append(f"http://{name}:{port}{path_and_query}")
        return urls


def _host_port(entry: str) -> tuple[str, int]:
    host, _, port = entry.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"http.peers: {entry!r} is not host:port")
    return host.strip("[]"), int(port)

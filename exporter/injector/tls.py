"""A server TLS context that follows its certificate files as they are rotated.

cert-manager and Kubernetes secret volumes replace ``tls.crt`` and ``tls.key`` in place
(an atomic symlink swap). ``ReloadingTlsContext.current()`` is called for every new
connection: it stats both files (two syscalls) and, when either changed, builds a new
context. A pair that does not load — a rotation caught half-way, key and certificate not
yet matching — keeps the previous context serving and is retried once the files change
again; it is logged, never fatal. Only the first load, at start-up, is fatal: a webhook
with no certificate cannot serve at all.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from exporter.errors import UserError

log = logging.getLogger(__name__)

Signature = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class LoadedCertificate:
    context: ssl.SSLContext
    not_after: float  # epoch seconds
    serial: int


def _signature(*paths: Path) -> Signature:
    result = []
    for path in paths:
        stat = os.stat(path)  # follows the secret volume's symlinks to the file itself
        result.append((stat.st_mtime_ns, stat.st_ino, stat.st_size))
    return tuple(result)


def load_certificate(cert_file: Path, key_file: Path) -> LoadedCertificate:
    """A server context for the pair; raises ``ssl.SSLError``/``OSError``/``ValueError``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    leaf = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    return LoadedCertificate(context, leaf.not_valid_after_utc.timestamp(), leaf.serial_number)


class ReloadingTlsContext:
    """The current server context for ``cert_file``/``key_file``; thread-safe."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self._cert_file = Path(cert_file)
        self._key_file = Path(key_file)
        self._lock = threading.Lock()
        self.reloads = 0
        self.reload_failures = 0
        try:
            self._signature = _signature(self._cert_file, self._key_file)
            self._loaded = load_certificate(self._cert_file, self._key_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise UserError(f"tls: cannot load {self._cert_file} with {self._key_file}: {exc}") from None
        self._failed: Signature | None = None

    @property
    def loaded(self) -> LoadedCertificate:
        return self._loaded

    def current(self) -> ssl.SSLContext:
        """The context to use for a new connection, reloaded first if the files changed."""
        try:
            signature = _signature(self._cert_file, self._key_file)
        except OSError as exc:
            # Mid-swap the files can vanish for an instant; the old pair keeps serving.
            log.debug("tls: cannot stat certificate files (%s); keeping the current pair", exc)
            return self._loaded.context
        if signature == self._signature or signature == self._failed:
            return self._loaded.context
        with self._lock:
            if signature == self._signature or signature == self._failed:
                return self._loaded.context
            try:
                loaded = load_certificate(self._cert_file, self._key_file)
            except (OSError, ssl.SSLError, ValueError) as exc:
                self._failed = signature
                self.reload_failures += 1
                log.warning(
                    "tls: new certificate files do not load (%s); still serving serial %x", exc, self._loaded.serial
                )
                return self._loaded.context
            self._loaded, self._signature, self._failed = loaded, signature, None
            self.reloads += 1
            log.info("tls: loaded certificate serial %x, valid until %.0f", loaded.serial, loaded.not_after)
            return loaded.context

"""The small HTTP server every role serves: ``/metrics``, ``/healthz``, ``/readyz`` and routes.

- :mod:`~exporter.httpd.connection` — keep-alive connections, bounded and de-chunked bodies;
- :mod:`~exporter.httpd.body` — a POST body read inside a size limit;
- :mod:`~exporter.httpd.auth` — bearer tokens: read from a file, checked in constant time;
- :mod:`~exporter.httpd.server` — the server, its routes and the health endpoints.

Named ``httpd`` so that it never shadows the standard library's ``http``.
"""

"""Serve a built viewer site over HTTP on 127.0.0.1 only (`budgeteval view … --serve`).

The site works from `file://` as well; serving it is for a remote machine reached through an SSH
tunnel, or a browser that refuses local files. Loopback only, files of the site folder only,
GET and HEAD only (the standard library's static handler); it stops on Ctrl-C.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HOST = "127.0.0.1"
"""The only address the viewer listens on."""


class _QuietHandler(SimpleHTTPRequestHandler):
    """The static file handler without a log line per request."""

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def serve_site(site_dir, port: int = 8000, announce: Callable[[str], None] = print) -> None:
    """Serve `site_dir` at http://127.0.0.1:`port`/ until interrupted (port 0: any free port).

    `announce(url)` is called once the socket listens. Returns after Ctrl-C, socket closed.
    """
    handler = functools.partial(_QuietHandler, directory=str(Path(site_dir)))
    server = ThreadingHTTPServer((HOST, port), handler)
    server.daemon_threads = True
    try:
        announce(f"http://{HOST}:{server.server_address[1]}/index.html")
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

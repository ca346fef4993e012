"""Start localstripe (a fake, stateful Stripe server) on 127.0.0.1.

    python tests/processors/run_localstripe.py [PORT]

PORT 0 (the default) picks a free port. The chosen port is printed on the first line of
stdout once the socket is bound. Unlike ``python -m localstripe --port N`` this binds
IPv4 loopback only, starts from an empty store, and does not pickle the whole store to
the shared ``/tmp/localstripe.pickle`` after every POST (slow, and racy between runs).
"""
from __future__ import annotations

import socket
import sys

from aiohttp import web
from localstripe import resources, server


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    print(sock.getsockname()[1], flush=True)
    web.run_app(server.app, sock=sock, print=None, access_log=None)


if __name__ == "__main__":
    main()

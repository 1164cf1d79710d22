"""ui: the workspace in a browser (environments, versions, diffs, cache, live builds), served by `envbuild ui`."""

from __future__ import annotations

import os

from . import add_common, err


def register(sub) -> None:
    p = sub.add_parser("ui", help="browse environments, versions, diffs, the cache and live builds in a browser")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1; any other needs a token)")
    p.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    p.add_argument("--catalog", metavar="URL", help="catalog to read and register into (default: the home's)")
    p.add_argument("--token", default=None,
                   help="token every request must carry (default: $ENVBUILD_UI_TOKEN); needed off loopback")
    p.add_argument("--open", action="store_true", help="open the UI in the default web browser")
    add_common(p)
    p.set_defaults(func=cmd_ui)


def cmd_ui(args) -> int:
    from ..errors import EnvbuildError

    try:
        from ..ui.app import serve
    except ImportError as exc:  # starlette, uvicorn and python-multipart are the `ui` extra
        raise EnvbuildError(f"envbuild ui needs {exc.name}, which is not installed",
                            fix="pip install 'envbuild[ui]'") from None
    from ..ui.workspace import Workspace

    token = args.token or os.environ.get("ENVBUILD_UI_TOKEN") or None
    serve(Workspace.at(args.cache_dir, args.catalog), host=args.host, port=args.port, token=token,
          open_browser=args.open, on_ready=lambda url: err(f"envbuild: ui on {url} (Ctrl-C stops it)"))
    return 0

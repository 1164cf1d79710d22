"""The one Docker adapter: every call envbuild makes to a Docker Engine goes through this package.

- `endpoint`: which engine (DOCKER_HOST with TLS, docker contexts, the local socket), decided once, and the
  environment that points a docker CLI subprocess or the SDK at that same engine;
- `client`: `Engine`, the small Engine API client of the cache-hit path (inspect, tag, remove);
- `cli`: which docker CLI, and the calls that go through it (pull, push, save, load, import, run).
Builds go through builder.py, which takes its CLI and its environment from here.

The hit path imports this package, and benchmark P2 measures what that costs: its top level stays on `_socket` and
os (json loads only for full image records and docker contexts, urllib.parse for tcp engines, ssl for TLS ones,
hashlib for docker contexts, the SDK only for the classic builder).
"""

from .client import Engine
from .endpoint import Endpoint, current_endpoint

__all__ = ["Engine", "Endpoint", "current_endpoint"]

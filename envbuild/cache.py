"""The content-addressed index: what has been built, under which key, and what it cost.

One diskcache (SQLite) under the envbuild home, safe for many threads and processes. Records, by prefix:
- ``build:<build key>``   → the image entry (reference, id, created, build seconds, size, hits, ...)
- ``request:<request key>`` → build key  (spec key + base image id: skips lock and render on a hit)
- ``memo:<file digest>``  → spec key     (exact bytes of a spec file seen before: skips parsing on a hit)
- ``lock:<lock request>`` → the Lock (skips the solve)
- ``log:<build key>``     → the build log
An entry is written only after its image exists: a failed or interrupted build leaves nothing behind.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import diskcache


class Index:
    def __init__(self, home: Path):
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self._cache = diskcache.Cache(str(home / "index"), eviction_policy="none", size_limit=2**40)

    def close(self) -> None:
        self._cache.close()

    # -- images --------------------------------------------------------------------------------------------------
    def get(self, build_key: str) -> dict | None:
        return self._cache.get(f"build:{build_key}")

    def put(self, build_key: str, entry: dict) -> None:
        self._cache.set(f"build:{build_key}", entry)

    def delete(self, build_key: str) -> None:
        with self._cache.transact():
            self._cache.delete(f"build:{build_key}")
            self._cache.delete(f"log:{build_key}")
            for key in list(self._cache.iterkeys()):
                if isinstance(key, str) and key.startswith("request:") and self._cache.get(key) == build_key:
                    self._cache.delete(key)

    def record_hit(self, build_key: str) -> None:
        with self._cache.transact():
            entry = self.get(build_key)
            if entry is None:
                return
            entry["hits"] = entry.get("hits", 0) + 1
            entry["last_hit"] = time.time()
            self.put(build_key, entry)

    def entries(self) -> Iterator[tuple[str, dict]]:
        for key in self._cache.iterkeys():
            if isinstance(key, str) and key.startswith("build:"):
                entry = self._cache.get(key)
                if entry is not None:
                    yield key[len("build:"):], entry

    # -- shortcuts to a build key ------------------------------------------------------------------------------------
    def resolve_request(self, request_key: str) -> str | None:
        return self._cache.get(f"request:{request_key}")

    def remember_request(self, request_key: str, build_key: str) -> None:
        self._cache.set(f"request:{request_key}", build_key)

    def memo_get(self, memo_key: str) -> dict | None:
        return self._cache.get(f"memo:{memo_key}")

    def memo_put(self, memo_key: str, value: dict) -> None:
        self._cache.set(f"memo:{memo_key}", value)

    # -- locks and logs --------------------------------------------------------------------------------------------
    def lock_get(self, lock_request: str):
        return self._cache.get(f"lock:{lock_request}")

    def lock_put(self, lock_request: str, lock) -> None:
        self._cache.set(f"lock:{lock_request}", lock)

    def log_get(self, build_key: str) -> str | None:
        return self._cache.get(f"log:{build_key}")

    def log_put(self, build_key: str, text: str) -> None:
        self._cache.set(f"log:{build_key}", text)

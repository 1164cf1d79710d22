"""Whether a host is this machine's loopback: a registry there speaks plain HTTP, a package index there is reached
from a container through the host network, and the UI may run there without a token."""

from __future__ import annotations


def is_loopback(host: str | None) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1, written with or without a port (`127.0.0.1:5000`, `[::1]:5000`)."""
    if not host:
        return False
    if host.startswith("["):  # [v6] or [v6]:port
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:  # name:port or v4:port
        host = host.partition(":")[0]
    if host.lower() == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""A second Docker Engine beside the first: "another machine" for tests and benchmarks.

`second_engine(root)` starts a real `dockerd` with its own data root, exec root, unix socket and bridge (with NAT,
so its build steps reach PyPI and Debian), optionally also listening on tcp://127.0.0.1:PORT with TLS
(`--tlsverify`, certificates made with openssl). It starts with no images, like a new machine: `load_images`
copies some from the main engine (`docker save | docker load`). Everything is torn down on exit, failure included:
the daemon (by its pid file), the iptables rules, the bridge, the directories.

Never `--bridge none`: that deletes the host's docker0 and breaks every build on the main engine.
Needs root (bridges, iptables, dockerd), as the main engine does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

MAIN_DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else (shutil.which("docker") or "docker")


@dataclass(frozen=True)
class SecondEngine:
    socket: str  # unix:///…/d.sock: always there, for setting it up
    tcp: str | None  # tcp://127.0.0.1:PORT when started with TLS
    client_certs: Path | None  # ca.pem, cert.pem, key.pem for a client (DOCKER_CERT_PATH)
    bridge: str
    root: Path

    @property
    def tls_env(self) -> dict[str, str]:
        """The variables that point a docker client at this engine over TLS, as a user would set them."""
        assert self.tcp and self.client_certs, "started without TLS"
        return {"DOCKER_HOST": self.tcp, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(self.client_certs)}

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """The docker CLI against this engine (over its unix socket)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        return subprocess.run([MAIN_DOCKER, "-H", self.socket, *args], capture_output=True, text=True, check=check,
                              env=env)

    def load_images(self, *refs: str) -> None:
        """Copy images from the main engine onto this one: `docker save REFS | docker load`."""
        main_env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        save = subprocess.Popen([MAIN_DOCKER, "save", *refs], stdout=subprocess.PIPE, env=main_env)
        try:
            loaded = subprocess.run([MAIN_DOCKER, "-H", self.socket, "load", "-q"], stdin=save.stdout,
                                    capture_output=True, text=True, env=main_env)
        finally:
            save.stdout.close()
            saved = save.wait()
        if saved != 0 or loaded.returncode != 0:
            raise RuntimeError(f"docker save | docker load of {refs} failed: {loaded.stderr}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def make_certificates(directory: Path) -> tuple[Path, Path]:
    """A CA, a server certificate for IP 127.0.0.1 and a client certificate, made with openssl.
    Returns (server directory, client directory); each holds ca.pem, cert.pem, key.pem."""
    server, client = directory / "server", directory / "client"
    server.mkdir(parents=True)
    client.mkdir(parents=True)
    ca_key, ca = directory / "ca-key.pem", directory / "ca.pem"
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=envbuild test CA",
         "-keyout", str(ca_key), "-out", str(ca))
    for where, subject, usage in ((server, "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                                  (client, "/CN=envbuild test client", "extendedKeyUsage=clientAuth")):
        (where / "ext.cnf").write_text(usage + "\n")
        _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(where / "key.pem"),
             "-out", str(where / "req.csr"))
        _run("openssl", "x509", "-req", "-in", str(where / "req.csr"), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "2", "-extfile", str(where / "ext.cnf"), "-out", str(where / "cert.pem"))
        shutil.copy(ca, where / "ca.pem")
    return server, client


def _free_subnet() -> int:
    """A 172.3x.0.0/16 that no interface uses (several second engines may run at once)."""
    used = _run("ip", "-4", "-o", "addr").stdout
    for x in range(30, 40):
        if f" 172.{x}." not in used:
            return x
    raise RuntimeError("no free 172.30-39.0.0/16 subnet for a second engine's bridge")


@contextlib.contextmanager
def second_engine(root: Path, *, tls: bool = True, timeout: float = 90.0) -> Iterator[SecondEngine]:
    """Start a second engine storing under `root`; yields it; stops it and removes what it made, whatever happens."""
    root.mkdir(parents=True, exist_ok=True)
    # A unix socket path is limited to ~107 bytes: the exec root (sockets of dockerd and its containerd) is short.
    short = Path(tempfile.mkdtemp(prefix="eb", dir="/tmp"))
    bridge = f"eb-{os.getpid() % 100000}-{short.name[-3:]}"[:15]
    undo: list[tuple[str, ...]] = []
    pidfile = short / "d.pid"
    daemon = None
    try:
        x = _free_subnet()
        subnet = f"172.{x}.0.0/16"
        _run("ip", "link", "add", bridge, "type", "bridge")
        undo.append(("ip", "link", "del", bridge))
        _run("ip", "addr", "add", f"172.{x}.0.1/16", "dev", bridge)
        _run("ip", "link", "set", bridge, "up")
        for table, rule in ((("-t", "nat"), ("POSTROUTING", "-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE")),
                            ((), ("FORWARD", "-i", bridge, "-j", "ACCEPT")),
                            ((), ("FORWARD", "-o", bridge, "-j", "ACCEPT"))):
            _run("iptables", *table, "-A", *rule)
            undo.append(("iptables", *table, "-D", *rule))
        sock = f"unix://{short}/d.sock"
        command = ["dockerd", "--data-root", str(root / "data"), "--exec-root", str(short / "er"), "-H", sock,
                   "--pidfile", str(pidfile), "--bridge", bridge, "--iptables=false",
                   "--config-file", str(_empty_config(root))]
        tcp = client = None
        if tls:
            server, client = make_certificates(root / "certs")
            tcp = f"tcp://127.0.0.1:{_free_port()}"
            command += ["-H", tcp, "--tlsverify", "--tlscacert", str(server / "ca.pem"),
                        "--tlscert", str(server / "cert.pem"), "--tlskey", str(server / "key.pem")]
        with open(root / "dockerd.log", "wb") as log:
            daemon = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        engine = SecondEngine(socket=sock, tcp=tcp, client_certs=client, bridge=bridge, root=root)
        deadline = time.monotonic() + timeout
        while engine.docker("info", check=False).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"second dockerd did not start:\n{(root / 'dockerd.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield engine
    finally:
        _stop(pidfile, daemon)
        for cmd in reversed(undo):
            _run(*cmd, check=False)
        shutil.rmtree(root / "data", ignore_errors=True)
        shutil.rmtree(short, ignore_errors=True)


def _empty_config(root: Path) -> Path:
    """An empty daemon.json: nothing from the host's /etc/docker/daemon.json (its hosts, its bridge) applies."""
    path = root / "daemon.json"
    path.write_text("{}\n")
    return path


def _stop(pidfile: Path, daemon: subprocess.Popen | None, timeout: float = 30.0) -> None:
    """Stop the daemon whose pid is in `pidfile` (else the one started, if it got that far): SIGTERM, so it
    unmounts its layers and stops its containerd, then SIGKILL if it does not go."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        pid = daemon.pid if daemon is not None and daemon.poll() is None else None
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid, daemon):
            time.sleep(0.2)
        if _alive(pid, daemon):
            os.kill(pid, signal.SIGKILL)
    if daemon is not None:
        daemon.wait(timeout=timeout)


def _alive(pid: int, daemon: subprocess.Popen | None) -> bool:
    if daemon is not None and daemon.pid == pid:
        return daemon.poll() is None  # reaps it: an exited child is not left a zombie that still "exists"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

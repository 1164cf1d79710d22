#!/usr/bin/env bash
# Make this machine ready for envbuild: a Docker Engine (BuildKit-capable CLI), debootstrap for the offline
# base image, Debian's docker-registry for the shared-cache tests, PostgreSQL for the team-catalog tests,
# Chromium and its driver for the UI tests, git for build contexts from git URLs, and envbuild with its Python
# dependencies.
# Idempotent: every step checks before it acts. Needs root (apt-get, dockerd).
set -euo pipefail
cd "$(dirname "$0")/.."

python_side() {
  python3 -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v -E "^WARNING: (Running pip as|Location)" || true
  python3 -c "import envbuild, docker, conda_lock, rattler, rattler_build, sqlalchemy, psycopg, starlette, selenium" || { echo "setup: Python dependencies missing" >&2; exit 1; }
}

# --python: envbuild and its Python dependencies only, what the unit tier needs (scripts/test.sh --unit): no apt,
# no engine.
if [[ "${1:-}" == "--python" ]]; then
  python_side
  echo "setup: Python side ready"
  exit 0
fi

need=()
[[ -x /usr/bin/docker && -x /usr/sbin/dockerd || -x /usr/bin/dockerd ]] || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || [[ -x /usr/sbin/debootstrap ]] || need+=(debootstrap)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v git >/dev/null 2>&1 || need+=(git)
if ((${#need[@]})); then
  echo "setup: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Debian's 20.10 CLI builds with BuildKit by itself (DOCKER_BUILDKIT=1); envbuild finds it on PATH.
docker_cli=/usr/bin/docker
if ! "$docker_cli" info >/dev/null 2>&1; then
  echo "setup: starting dockerd"
  mkdir -p /var/log
  nohup dockerd >/var/log/envbuild-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    "$docker_cli" info >/dev/null 2>&1 && break
    sleep 1
  done
  "$docker_cli" info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/envbuild-dockerd.log" >&2; exit 1; }
fi

python_side
echo "setup: ready (engine: $("$docker_cli" version --format '{{.Server.Version}}'))"

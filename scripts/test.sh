#!/usr/bin/env bash
# Set up this machine (scripts/setup.sh) and run the whole test suite: unit tier and real-engine tier.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec python3 -m pytest -q -p no:cacheprovider "$@" tests

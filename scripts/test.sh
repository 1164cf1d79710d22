#!/usr/bin/env bash
# Run the test suite.
#   scripts/test.sh          set up this machine (scripts/setup.sh) and run everything: unit and real-engine tier
#   scripts/test.sh --unit   install envbuild's Python side only (no engine started) and run the tests that need no
#                            engine and are not marked slow
# Other arguments pass through to pytest (-x, -k NAME, a test file, -m EXPR to choose another tier).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--unit" ]]; then
  shift
  bash scripts/setup.sh --python
  exec python3 -m pytest -q -p no:cacheprovider -m "not engine and not slow" "$@"
fi
bash scripts/setup.sh
exec python3 -m pytest -q -p no:cacheprovider "$@"

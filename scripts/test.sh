#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run all of it.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/core -x`).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# Browser tests drive Debian's Chromium (a browser download at install time is not possible).
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "warning: /usr/bin/chromium missing and cannot be installed; browser tests will be skipped" >&2
    fi
fi

# Pages are Chinese: without a CJK font headless Chromium draws boxes in screenshots.
if [ -x /usr/bin/chromium ] && command -v fc-list >/dev/null && [ -z "$(fc-list :lang=zh)" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null; }
    else
        echo "warning: no CJK font (apt package fonts-noto-cjk); screenshots will show boxes" >&2
    fi
fi

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
set +e
.venv/bin/pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    # Exit 5 means the selection matched no test: not a failure of the code under test.
    echo "pytest collected no tests for: $*" >&2
    exit 0
fi
exit "$status"

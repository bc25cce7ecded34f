#!/usr/bin/env bash
# The web SDK's whole test run for CI (ctest "web_sdk"): installs the locked dev dependencies,
# builds the SDK and the demo, runs the unit tests, the integration tests against IMD_PATH and
# the browser test in Chromium. Usage: sdk/web/test/ci.sh path/to/imd
set -euo pipefail
# The imd path is resolved before the cd below, so a relative one works too; a missing one
# stops the run (the integration and browser tests would otherwise be skipped).
imd=$(realpath -e "${1:?usage: sdk/web/test/ci.sh path/to/imd}")
[ -x "$imd" ] || { echo "ci.sh: $1 is not an executable" >&2; exit 2; }
cd "$(dirname "$0")/.."
export IMD_PATH="$imd"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1  # the system's Chromium is used, never a download
# npm ci again only when the lock file changed since the last install.
stamp=node_modules/.lock-stamp
if ! cmp -s package-lock.json "$stamp" 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
# Chromium's first start on a fresh machine builds its caches (seen to take over 20 s): start
# it once here, outside any test's timeout.
timeout 120 "${CHROMIUM_PATH:-/usr/bin/chromium}" --headless --no-sandbox --disable-gpu \
  --dump-dom about:blank >/dev/null 2>&1 || true
npm test

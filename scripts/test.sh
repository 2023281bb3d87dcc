#!/usr/bin/env bash
# The README's test command (`npm test`, arguments passed on to vitest). Tests of the API and of
# persistence run on a real PostgreSQL: the one at DATABASE_URL when it is set (CI's); otherwise this
# machine's, installed from Debian's packages and started when needed (scripts/ensure-postgres.sh),
# in a database `payments_test` made anew each run, so nothing an earlier run left can leak in.
# TEST_DATABASE=pglite runs on an embedded PGlite instead: one lane, about twice as long, and the
# tests that need two sessions at once are skipped there.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DATABASE_URL:-}" ] && [ "${TEST_DATABASE:-postgres}" != pglite ]; then
  url="$(PGDATABASE=payments_test PG_FRESH=1 bash scripts/ensure-postgres.sh | tail -n 1)"
  echo "tests use PostgreSQL at $url, made anew (DATABASE_URL to use another, TEST_DATABASE=pglite for an embedded one)"
  export DATABASE_URL="$url"
fi
exec npx vitest run "$@"

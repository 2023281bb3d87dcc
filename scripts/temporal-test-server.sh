#!/bin/sh
# Runs Temporal's Java time-skipping test server. `exec` matters: the SDK stops the server by
# killing the process it started, which must therefore be the JVM itself.
# The classpath is resolved from Maven Central by scripts/temporal/test-server.ts into the cache.
classpath_file="${PAYMENT_SCHEDULER_CACHE:-$HOME/.cache/payment-scheduler}/test-server/classpath.txt"
if [ ! -s "$classpath_file" ]; then
  echo "temporal-test-server: $classpath_file is missing; run `npm run temporal:ensure` first" >&2
  exit 1
fi
exec java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto -cp "$(cat "$classpath_file")" io.temporal.testserver.TestServer "$@"

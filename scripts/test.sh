#!/usr/bin/env bash
# The one test command (npm test): build, typecheck, lint, then every test file with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
npm run --silent build
# The real services the e2e tests talk to (RabbitMQ, Kafka, Redis, PostgreSQL, S3Proxy, tuspy, Chromium, ...): each
# script installs what is missing and starts its service on loopback; quick when already up.
# WHARF_TEST_SERVICES=0 skips this when they are started elsewhere (.ci/run starts them first).
if [ "${WHARF_TEST_SERVICES:-1}" != 0 ]; then bash scripts/start-services.sh; fi
npx tsc -p tsconfig.json --noEmit
npx biome check src test bench scripts >/dev/null || npx biome check src test bench scripts
shopt -s nullglob globstar
files=(test/unit/**/*.test.ts test/e2e/**/*.test.ts test/fault/**/*.test.ts)
exec node --import tsx --test --test-reporter=spec --test-concurrency=2 --test-timeout=300000 "${files[@]}"

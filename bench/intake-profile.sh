#!/usr/bin/env bash
# A flame graph of the webhook path under bench/intake.sh's load: one `serve` (release build with
# line tables, so perf can name inlined frames), 32 connections posting capture 01 for 12 s,
# perf sampling the server for 5 s in the middle. Writes the folded stacks and an SVG.
#   bench/intake-profile.sh [OUT_DIR]   (default target/intake-profile)
# Needs perf (linux-perf) and inferno (`cargo install inferno`).
# A benchmark, not a test: proportions vary with the machine's other load.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-target/intake-profile}
PORT=${PORT:-18092}
mkdir -p "$OUT"
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_PROFILE_RELEASE_STRIP=false \
  cargo build --release --locked --quiet

work=$(mktemp -d)
token="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
TOKEN_ROTATOR_WEBHOOK_TOKEN="$token" TOKEN_ROTATOR_DATABASE_URL="sqlite://$work/journal.db" \
  ./target/release/token-rotator serve --listen "127.0.0.1:$PORT" 2>"$work/serve.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

wrk -t2 -c32 -d12s --timeout 10s -s bench/intake.lua "http://127.0.0.1:$PORT/v1/alertmanager" \
  -- fixtures/alertmanager/01-firing-single-bearer-auth.raw "$token" >"$work/wrk.txt" &
load=$!
sleep 3
perf record -F 999 --call-graph dwarf,16384 -p "$server" -o "$work/perf.data" -- sleep 5 2>/dev/null
wait $load
grep '^RESULT' "$work/wrk.txt"
perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf >"$OUT/webhook.folded"
inferno-flamegraph --title "POST /v1/alertmanager (capture 01, 32 connections)" \
  <"$OUT/webhook.folded" >"$OUT/webhook.svg"
echo "flame graph: $OUT/webhook.svg (folded stacks: $OUT/webhook.folded)"

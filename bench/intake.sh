#!/usr/bin/env bash
# Intake throughput with a durable journal (WAL, synchronous=FULL): POST /v1/alertmanager vs
# GET /healthz of the same process, 32 connections, 10 s each. Prints req/s, p50, p99 and the
# webhook/healthz ratio, then how long one /metrics scrape takes over the journal the load left.
# Targets (bench/README.md): ratio >= 0.5, webhook p99 <= 10 ms.
# A benchmark, not a test: figures vary with the machine's other load.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-10s}
PORT=${PORT:-18090}

if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --quiet

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

run() { # name, url, script, args...
  local name=$1 url=$2 script=$3; shift 3
  local line
  line=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --timeout 10s -s "$script" "$url" -- "$@" | grep '^RESULT')
  echo "$name ${line#RESULT }" >&2
  echo "$line"
}
field() { sed -E "s/.*$1=([0-9.]+).*/\1/" <<<"$2"; }

webhook=$(run webhook "http://127.0.0.1:$PORT/v1/alertmanager" bench/intake.lua \
  fixtures/alertmanager/01-firing-single-bearer-auth.raw "$token")
healthz=$(run healthz "http://127.0.0.1:$PORT/healthz" bench/summary.lua)

rows=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from alerts').fetchone()[0])" "$work/journal.db")
w_rps=$(field rps "$webhook"); h_rps=$(field rps "$healthz")
printf '\nwebhook: %s req/s  p50 %s ms  p99 %s ms\n' "$w_rps" "$(field p50_ms "$webhook")" "$(field p99_ms "$webhook")"
printf 'healthz: %s req/s  p50 %s ms  p99 %s ms\n' "$h_rps" "$(field p50_ms "$healthz")" "$(field p99_ms "$healthz")"
ratio=$(python3 -c "print(round($w_rps / $h_rps, 3))")
printf 'ratio webhook/healthz: %s\n' "$ratio"
verdict() { python3 -c "print('met' if $1 else 'MISSED')"; }
printf 'targets: ratio >= 0.5 %s; webhook p99 <= 10 ms %s\n' \
  "$(verdict "$ratio >= 0.5")" "$(verdict "$(field p99_ms "$webhook") <= 10")"
printf 'alerts journaled: %s\n' "$rows"
# Every gauge is read from the journal at scrape time: it must stay quick as the journal grows.
printf '/metrics over that journal: %s s\n' \
  "$(curl -fsS -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/metrics")"

# Wrong credentials beside right ones: a flood of refused webhooks must not slow the good ones.
wrk -t1 -c8 -d"$DURATION" --timeout 10s -s bench/intake.lua "http://127.0.0.1:$PORT/v1/alertmanager" \
  -- fixtures/alertmanager/01-firing-single-bearer-auth.raw "wrong-$token" > "$work/wrong.txt" 2>&1 &
flood=$!
attacked=$(run "webhook-beside-wrong" "http://127.0.0.1:$PORT/v1/alertmanager" bench/intake.lua \
  fixtures/alertmanager/01-firing-single-bearer-auth.raw "$token")
wait $flood
refused=$(grep -oE 'non2xx=[0-9]+' "$work/wrong.txt" | head -1 | cut -d= -f2)
printf 'beside %s refused wrong-credential requests: webhook %s req/s  p99 %s ms (alone: p99 %s ms)\n' \
  "${refused:-?}" "$(field rps "$attacked")" "$(field p99_ms "$attacked")" "$(field p99_ms "$webhook")"

#!/usr/bin/env bash
# Interleaved A/B of two `serve` binaries under bench/intake.sh's load: webhook then healthz,
# 32 connections, DURATION seconds each, a fresh durable journal per trial; the binaries take
# turns (A B B A A B …) so that a change in the machine's other load falls on both.
# Per trial: req/s, p99, the webhook/healthz ratio, and CPU per request from /proc (the server
# split by thread name, and wrk), which other work on the machine does not inflate the way it
# does req/s. Usage: bench/intake-ab.sh A_BINARY B_BINARY [ROUNDS]
# A benchmark, not a test: figures vary with the machine's other load.
set -euo pipefail
cd "$(dirname "$0")/.."

A=$1
B=$2
ROUNDS=${3:-3}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-10}
PORT=${PORT:-18091}
TICK=$(getconf CLK_TCK)

# utime+stime of every thread of $1, summed by thread name: "name ticks" lines.
threads() {
  for stat in /proc/"$1"/task/*/stat; do
    # The name is in parentheses and may hold spaces; the fields after it are fixed.
    sed -E 's/^[0-9]+ \((.*)\) (.*)$/\1\t\2/' "$stat" 2>/dev/null |
      awk -F'\t' '{ split($2, f, " "); print $1 "\t" f[12] + f[13] }'
  done | awk -F'\t' '{ t[$1] += $2 } END { for (n in t) print n "\t" t[n] }'
}

# "name µs-per-request" for the CPU each thread name spent between two snapshots.
per_request() { # before after requests
  join -t$'\t' -a2 -e0 -o '0,1.2,2.2' <(sort "$1") <(sort "$2") |
    awk -F'\t' -v n="$3" -v tick="$TICK" \
      '{ us = ($3 - $2) / tick * 1e6 / n; total += us; if (us >= 0.5) printf "%s=%.1f ", $1, us }
       END { printf "server_total=%.1f", total }'
}

phase() { # pid url script args... → "rps p99 server-µs wrk-µs threads…"
  local pid=$1 url=$2 script=$3; shift 3
  local before after out rps p99 requests wrk_cpu
  before=$(mktemp); after=$(mktemp)
  threads "$pid" >"$before"
  out=$( { /usr/bin/time -f 'WRKCPU %U %S' wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s \
    -s "$script" "$url" -- "$@"; } 2>&1)
  threads "$pid" >"$after"
  rps=$(sed -nE 's/^RESULT rps=([0-9.]+).*/\1/p' <<<"$out")
  p99=$(sed -nE 's/^RESULT .*p99_ms=([0-9.]+).*/\1/p' <<<"$out")
  requests=$(python3 -c "print(max(1, round($rps * $DURATION)))")
  wrk_cpu=$(awk '/^WRKCPU/ { printf "%.1f", ($2 + $3) * 1e6 / '"$requests"' }' <<<"$out")
  echo "$rps $p99 wrk=$wrk_cpu $(per_request "$before" "$after" "$requests")"
  rm -f "$before" "$after"
}

trial() { # label binary
  local label=$1 binary=$2 work token server webhook healthz
  work=$(mktemp -d)
  token="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  TOKEN_ROTATOR_WEBHOOK_TOKEN="$token" TOKEN_ROTATOR_DATABASE_URL="sqlite://$work/journal.db" \
    "$binary" serve --listen "127.0.0.1:$PORT" 2>"$work/serve.log" &
  server=$!
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  webhook=$(phase "$server" "http://127.0.0.1:$PORT/v1/alertmanager" bench/intake.lua \
    fixtures/alertmanager/01-firing-single-bearer-auth.raw "$token")
  healthz=$(phase "$server" "http://127.0.0.1:$PORT/healthz" bench/summary.lua)
  kill "$server"; wait "$server" 2>/dev/null || true
  rm -rf "$work"
  read -r w_rps w_p99 w_rest <<<"$webhook"
  read -r h_rps h_p99 h_rest <<<"$healthz"
  printf '%s load=%s ratio=%s webhook: %s req/s p99 %s ms | healthz: %s req/s p99 %s ms\n' \
    "$label" "$load" "$(python3 -c "print(round($w_rps / $h_rps, 3))")" "$w_rps" "$w_p99" "$h_rps" "$h_p99"
  printf '%s   webhook µs/request: %s\n' "$label" "$w_rest"
  printf '%s   healthz µs/request: %s\n' "$label" "$h_rest"
}

for round in $(seq "$ROUNDS"); do
  if (( round % 2 )); then order="A B"; else order="B A"; fi
  for side in $order; do
    if [[ $side == A ]]; then trial A "$A"; else trial B "$B"; fi
  done
done

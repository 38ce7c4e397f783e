#!/usr/bin/env bash
# Weight and server-side time of the status page with 1 000 rotations in the journal (targets:
# GET / under 100 KiB, p50 under 50 ms). Journals 1 000 rotations with `token-rotator rotate`
# (no engine runs, so they stay planned; the list shows them 100 rows a page under the summary),
# starts `serve`, and times GET / and GET /v1/rotations from loopback.
# A benchmark, not a test: figures vary with the machine's other load.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=${TARGETS:-1000}
PORT=${PORT:-18091}
cargo build --release --quiet
bin=./target/release/token-rotator
work=$(mktemp -d)
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
server=
config="$work/config.toml"
printf 'status_page_open = true\n[environments.production]\nmode = "active"\n[[rules]]\nname = "all"\naction = "rotate"\n' > "$config"
export TOKEN_ROTATOR_DATABASE_URL="sqlite://$work/journal.db" TOKEN_ROTATOR_WEBHOOK_TOKEN=bench

echo "journaling $TARGETS rotations…"
for i in $(seq 1 "$TARGETS"); do
  "$bin" rotate --config "$config" --environment production \
    --api-user "app-$i@alphagov.co.uk" --application "Publishing API" >/dev/null
done

RUST_LOG=warn "$bin" serve --config "$config" --listen "127.0.0.1:$PORT" 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

measure() { # path
  for _ in $(seq 30); do
    curl -fsS -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$PORT$1"
  done | sort -n | awk -v path="$1" '{ t[NR] = $1 * 1000 } END {
    printf "%-14s p50 %.1f ms   p90 %.1f ms   max %.1f ms   (%d requests)\n", path, t[int(NR*0.5)], t[int(NR*0.9)], t[NR], NR }'
}
rows=$(curl -fsS "http://127.0.0.1:$PORT/" | grep -o '<tr class="' | wc -l)
bytes=$(curl -fsS "http://127.0.0.1:$PORT/" | wc -c)
echo "GET / shows $rows rows in $bytes bytes ($((bytes / 1024)) KiB)"
measure /
measure /v1/rotations

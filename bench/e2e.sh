#!/usr/bin/env bash
# End to end: N expiring tokens (default 1000) delivered as Alertmanager delivers them (groups
# of up to 50), grace 0, Signon, the Kubernetes API and Slack simulated on loopback, release
# build. Prints time to all done, rotations/s, peak RSS, journal size, Slack messages and the
# most in any second per channel. Targets: all done <= 60 s, Slack <= 1 post/s per channel,
# RSS <= 100 MiB.
#   bench/e2e.sh [TOKENS] [--profile realistic [--intake-only]]
# The realistic profile gives the simulators a real cluster's latency (bench/README.md) and
# prints each figure beside its floor and the three realistic-latency targets (bench/README.md) as met or not.
set -euo pipefail
cd "$(dirname "$0")/.."
tokens=1000
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  tokens=$1
  shift
fi
# The realistic profile measures intake beside the busy engine with wrk in its own process, as
# bench/intake.sh measures intake alone (without wrk it falls back to in-process clients).
if [[ " $* " == *" realistic "* || " $* " == *"--profile=realistic"* ]] && ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null || true
fi
cargo build --release --locked -q
exec ./target/release/token-rotator bench-e2e --tokens "$tokens" "$@"

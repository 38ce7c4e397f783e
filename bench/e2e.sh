#!/usr/bin/env bash
# End to end: N expiring tokens (default 1000) delivered as Alertmanager delivers them (groups
# of up to 50), grace 0, Signon, the Kubernetes API and Slack simulated on loopback, release
# build. Prints time to all done, rotations/s, peak RSS, journal size, Slack messages and the
# most in any second per channel. Targets: all done <= 60 s, Slack <= 1 post/s per channel,
# RSS <= 100 MiB.
#   bench/e2e.sh [TOKENS] [--profile realistic]
# The realistic profile gives the simulators a real cluster's latency (bench/README.md) and
# prints each figure beside its floor and the three targets of issue 26 as met or not.
set -euo pipefail
cd "$(dirname "$0")/.."
tokens=1000
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  tokens=$1
  shift
fi
cargo build --release --locked -q
exec ./target/release/token-rotator bench-e2e --tokens "$tokens" "$@"

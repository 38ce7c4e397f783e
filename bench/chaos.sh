#!/usr/bin/env bash
# A longer crash run than CI's: `token-rotator serve` killed with SIGKILL KILLS times (default
# 1000) at phase boundaries and random moments, restarted on the same journal each time; then
# every target must be rotated once, none revoked while in use, no acknowledged alert lost.
#   bench/chaos.sh [KILLS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
export TOKEN_ROTATOR_KILLS="${1:-1000}"
if [ -n "${2:-}" ]; then export TOKEN_ROTATOR_CHAOS_SEED="$2"; fi
exec cargo nextest run --locked --no-capture --run-ignored all \
  kill::serve_killed_over_and_over_finishes_every_rotation_exactly_once

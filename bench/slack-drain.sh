#!/usr/bin/env bash
# The notifier's drain of 200 rotations in 20 channels against the fastest pace Slack's limits
# allow (one post a second per channel, 50 edits a minute per workspace): prints the ratio and
# fails below 0.9. About five minutes, paced by Slack's limits rather than by the CPU.
#   bench/slack-drain.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo nextest run --locked --test api --run-ignored ignored-only --no-capture \
  -E 'test(/slack::drain::/)' 2>&1 | grep -E "Slack drain:|drained in|PASS|FAIL|Summary"

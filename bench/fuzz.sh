#!/usr/bin/env bash
# Fuzzes the edges that take outside input — the webhook parser (random bytes and mutated
# Alertmanager captures), the config parser (mutations of the shipped config), the rule
# patterns, and the Slack signature check — with the property tests of tests/api/props.rs at a
# large case count (stable toolchain: cargo-fuzz needs nightly). Prints inputs run, crashes
# (must be 0) and time.
#   bench/fuzz.sh [CASES_PER_PROPERTY]    (default 150000: 7 properties, over a million inputs)
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-150000}"
properties=$(grep -c '^    fn ' tests/api/props.rs)
cargo build --release --tests --locked -q
start=$(date +%s.%N)
set +e
PROPTEST_CASES="$cases" cargo nextest run --release --locked --no-fail-fast props:: > /tmp/fuzz.log 2>&1
status=$?
set -e
end=$(date +%s.%N)
failed=$(grep -c '^ *FAIL ' /tmp/fuzz.log || true)
printf 'inputs run: %d (%d properties x %d cases)\n' $((properties * cases)) "$properties" "$cases"
printf 'crashes (failed properties): %d\n' "$failed"
python3 -c "print(f'time: {$end - $start:.1f} s')"
if [ "$status" -ne 0 ]; then
  grep -A20 'minimal failing input' /tmp/fuzz.log || tail -40 /tmp/fuzz.log
  exit 1
fi

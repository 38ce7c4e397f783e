#!/usr/bin/env bash
# A compressed week, longer than CI's form: two `serve` replicas (a release build) on one
# PostgreSQL; seven simulated days of DAY real time each (default 60s; CI's form is 12s), with
# alert-driven rotations as both Alertmanagers send them (then repeats, then resolved), five
# scheduled GitLab targets rotated once a day (a minute at least), 5 % of Signon's, GitLab's,
# the Kubernetes API's and Slack's calls failing or timing out (seeded), and the leader
# SIGKILLed and restarted once a day. Prints the per-day table (each replica's RSS and
# descriptors, the journal's size, PostgreSQL's connections), the slopes over days 2-7 and the
# run's counts; fails, as the test does, on a slope over its bound, a rotation not ended, an
# acknowledged alert not journaled once, a duplicate side effect or a token in the logs.
#   bench/soak.sh [DAY] [SEED]      (about 7 x DAY + a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
export TOKEN_ROTATOR_SOAK_DAY="${1:-60s}"
if [ -n "${2:-}" ]; then export TOKEN_ROTATOR_SOAK_SEED="$2"; fi
# The service's default lease, as bench/failover.sh.
export TOKEN_ROTATOR_FAILOVER_LEASE="${TOKEN_ROTATOR_FAILOVER_LEASE:-10s}"
# The replicas are the release binary; the test that drives them and the simulators stay a
# debug build (tests/api/process.rs runs TOKEN_ROTATOR_BIN when it is set).
cargo build --release --locked --quiet --bin token-rotator
export TOKEN_ROTATOR_BIN="$PWD/target/release/token-rotator"
if [ -z "${TOKEN_ROTATOR_TEST_POSTGRES:-}" ]; then
  pgdir=$(mktemp -d)
  TOKEN_ROTATOR_TEST_POSTGRES=$(bash .ci/postgres "$pgdir")
  export TOKEN_ROTATOR_TEST_POSTGRES
  trap 'bash .ci/postgres "$pgdir" stop || true' EXIT
fi
echo "day $TOKEN_ROTATOR_SOAK_DAY, lease $TOKEN_ROTATOR_FAILOVER_LEASE; $(nproc) cores; $TOKEN_ROTATOR_BIN"
cargo nextest run --locked --no-capture --test api -E 'test(/failover::soak::a_week/)' \
  2>&1 | grep -E "^(soak:|day|[0-9]+ \||slope|the leader just|faults injected)|PASS|FAIL|panicked|Summary"

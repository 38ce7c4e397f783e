#!/usr/bin/env bash
# Failover of two `serve` replicas on one PostgreSQL, with the default lease (10s) unless
# LEASE is given: the leader SIGKILLed at each phase boundary of a running rotation, and the
# leader cut off from PostgreSQL (a frozen TCP proxy). Prints how long the standby took to lead
# and to finish the rotation, and when the cut-off leader stepped down.
#   bench/failover.sh [LEASE]
set -euo pipefail
cd "$(dirname "$0")/.."
export TOKEN_ROTATOR_FAILOVER_LEASE="${1:-10s}"
if [ -z "${TOKEN_ROTATOR_TEST_POSTGRES:-}" ]; then
  pgdir=$(mktemp -d)
  TOKEN_ROTATOR_TEST_POSTGRES=$(bash .ci/postgres "$pgdir")
  export TOKEN_ROTATOR_TEST_POSTGRES
  trap 'bash .ci/postgres "$pgdir" stop || true' EXIT
fi
echo "lease $TOKEN_ROTATOR_FAILOVER_LEASE; PostgreSQL at $TOKEN_ROTATOR_TEST_POSTGRES"
cargo nextest run --locked --no-capture --test-threads 1 \
  failover::the_leader_killed_at_each_phase_boundary failover::a_leader_cut_off_from_postgres \
  2>&1 | grep -E "killed the leader|slowest takeover|cut off:|PASS|FAIL|Summary"

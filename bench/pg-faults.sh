#!/usr/bin/env bash
# Faults of the database under two `serve` replicas, longer than CI's forms:
#   - PostgreSQL stopped (`pg_ctl stop -m fast`, `-m immediate`) and started again, or replaced
#     by a copy of its data on the same port, in every phase of a running rotation (18 faults),
#     under a flood of webhooks;
#   - every statement delayed 50-500 ms by a proxy while rotations run and webhooks flood in;
#   - the server gone without closing our connections, its address taken over;
#   - the recorded HA-duplicate pair sent by "both Alertmanagers" to both replicas at once, for
#     100 targets.
# Each fails on a lost acknowledged alert or a repeated side effect (mints, revokes, Secret
# writes counted at the simulators) and prints its figures.
#   bench/pg-faults.sh [LEASE]     (default 10s, the service's default)
set -euo pipefail
cd "$(dirname "$0")/.."
export TOKEN_ROTATOR_FAILOVER_LEASE="${1:-10s}"
export TOKEN_ROTATOR_PG_FAULTS=all TOKEN_ROTATOR_PG_SLOW_ROTATIONS=2
export TOKEN_ROTATOR_HA_TARGETS=100 TOKEN_ROTATOR_HA_COPIES=3
# The outage test starts a PostgreSQL of its own (it stops and replaces it); the others share one.
if [ -z "${TOKEN_ROTATOR_TEST_POSTGRES:-}" ]; then
  pgdir=$(mktemp -d)
  TOKEN_ROTATOR_TEST_POSTGRES=$(bash .ci/postgres "$pgdir")
  export TOKEN_ROTATOR_TEST_POSTGRES
  trap 'bash .ci/postgres "$pgdir" stop || true' EXIT
fi
echo "lease $TOKEN_ROTATOR_FAILOVER_LEASE; $(nproc) cores"
cargo nextest run --locked --no-capture --test-threads 1 \
  failover::outage:: failover::slow:: failover::severed:: failover::ha:: \
  2>&1 | grep -E "^(Fast|Immediate|Promoted) in|faults; flood|^slowed|^severed|^HA duplicates|PASS|FAIL|panicked|Summary"

#!/usr/bin/env bash
# Starts a chatter model, runs N clients against it and prints the
# performance and the resources the server used:
#
#   scripts/load_test.sh MODEL N [more chatter bench options]
#
# MODEL is iterative, prethread or prefork. The server runs on an ephemeral
# loopback port and is stopped afterwards. On a machine with 2+ cores the
# server is pinned to CPU 0 and the load generator to CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
model=$1 n=$2
shift 2
pin=()
if [ "$(nproc)" -ge 2 ]; then pin=(--server-cpu 0 --client-cpu 1); fi
cargo build --release --quiet
exec target/release/chatter bench --spawn "$model" "${pin[@]}" --clients "$n" "$@"

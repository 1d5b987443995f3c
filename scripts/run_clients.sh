#!/usr/bin/env bash
# Simulates N clients against a running server, as the original load tests did:
#
#   scripts/run_clients.sh N [HOST:PORT] [PID]
#
# N IRC clients connect, register and join #bench; 10 of them send 100
# messages each; every delivery is checked and timed. HOST:PORT defaults to
# 127.0.0.1:6667. Give the server's PID to see its CPU and memory too. Any
# further options are passed to `chatter bench` (see `chatter bench --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
n=$1
target=${2:-127.0.0.1:6667}
shift $(( $# >= 2 ? 2 : 1 ))
pid_args=()
if [ $# -ge 1 ] && [[ $1 =~ ^[0-9]+$ ]]; then pid_args=(--pid "$1"); shift; fi
cargo build --release --quiet
exec target/release/chatter bench --target "$target" "${pid_args[@]}" --clients "$n" "$@"

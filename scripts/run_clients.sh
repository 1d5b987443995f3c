#!/usr/bin/env bash
# Simulates N clients against a running server, as the original load tests
# did, by running `chatter bench --target`.
set -euo pipefail

usage() {
  cat >&2 <<'USAGE'
usage: scripts/run_clients.sh N [HOST:PORT] [PID] [chatter bench options...]

N IRC clients connect, register and join #bench; 10 of them send 100
messages each, open loop (as fast as TCP takes them); every delivery is
checked and timed. HOST:PORT defaults to 127.0.0.1:6667. Give the server's
PID to see its CPU and memory too. Further options go to `chatter bench`
(see `chatter bench --help`), e.g. --rate 100 or --closed-loop.
USAGE
  exit 2
}

[ $# -ge 1 ] && [[ $1 =~ ^[0-9]+$ ]] || usage
n=$1
shift
target=127.0.0.1:6667
# Positional HOST:PORT and PID are optional: anything starting with "-" is
# already an option for chatter bench.
if [ $# -ge 1 ] && [[ $1 != -* ]]; then target=$1; shift; fi
pid_args=()
if [ $# -ge 1 ] && [[ $1 =~ ^[0-9]+$ ]]; then pid_args=(--pid "$1"); shift; fi
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec target/release/chatter bench --target "$target" "${pid_args[@]}" --clients "$n" "$@"

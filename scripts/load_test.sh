#!/usr/bin/env bash
# Starts a chatter model, runs N clients against it and prints the
# performance and the resources the server used, by running
# `chatter bench --spawn`.
set -euo pipefail

usage() {
  cat >&2 <<'USAGE'
usage: scripts/load_test.sh MODEL N [chatter bench options...]

MODEL is iterative, prethread or prefork. The server runs on an ephemeral
loopback port and is stopped afterwards. On a machine with 2+ cores the
server is pinned to CPU 0 and the load generator to CPU 1. Further options
go to `chatter bench` (see `chatter bench --help`), e.g. --workers 1,
--rate 100 or --closed-loop.
USAGE
  exit 2
}

[ $# -ge 2 ] || usage
case $1 in iterative | prethread | prefork) ;; *) usage ;; esac
[[ $2 =~ ^[0-9]+$ ]] || usage
model=$1 n=$2
shift 2
pin=()
if [ "$(nproc)" -ge 2 ]; then pin=(--server-cpu 0 --client-cpu 1); fi
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec target/release/chatter bench --spawn "$model" "${pin[@]}" --clients "$n" "$@"

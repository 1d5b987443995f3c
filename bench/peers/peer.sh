#!/usr/bin/env bash
# Starts and stops a peer IRC server (ngIRCd or InspIRCd) on a loopback port
# for `chatter bench sweep --peer`, configured from NAME.conf.in beside this
# script. Stops only the PID it started. See README.md here for the
# configuration and why each throttle is off.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUN=${PEERS_RUN:-/tmp/peers-run}

usage() {
  cat >&2 <<'USAGE'
usage: bench/peers/peer.sh start NAME PORT [CPU]
       bench/peers/peer.sh stop  NAME PORT
       bench/peers/peer.sh pid   NAME PORT

NAME is ngircd or inspircd (apt-get install ngircd inspircd).
  start  start NAME on 127.0.0.1:PORT, pinned to CPU if given; prints its PID
  stop   SIGTERM the PID that start recorded (SIGKILL after 20 s)
  pid    print the recorded PID if that server is still running

The filled-in config, PID file and logs go to $PEERS_RUN/NAME-PORT (default
/tmp/peers-run, outside the repository). start raises the open-files limit to
min(hard limit, 65536) first.
USAGE
  exit 2
}

[ $# -ge 3 ] || usage
CMD=$1 NAME=$2 PORT=$3 CPU=${4:-}
case "$NAME" in ngircd | inspircd) ;; *) echo "unknown peer: $NAME (ngircd or inspircd)" >&2; exit 2 ;; esac
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "bad port: $PORT" >&2; exit 2; }
[ -z "$CPU" ] || [[ "$CPU" =~ ^[0-9]+$ ]] || { echo "bad CPU: $CPU" >&2; exit 2; }
DIR=$RUN/$NAME-$PORT
PIDFILE=$DIR/pid

# True if PID is alive and runs NAME's binary: a recorded PID may have been
# reused by an unrelated process since, and that one must not be signalled.
alive() {
  local pid=$1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$NAME"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

case "$CMD" in
start)
  command -v "$NAME" >/dev/null || { echo "$NAME is not installed (apt-get install $NAME)" >&2; exit 1; }
  mkdir -p "$DIR"
  if [ -f "$PIDFILE" ] && alive "$(cat "$PIDFILE")"; then
    echo "$NAME already running on $PORT as PID $(cat "$PIDFILE")" >&2; exit 1
  fi
  if port_open "$PORT"; then echo "port $PORT is already in use" >&2; exit 1; fi
  sed "s|@PORT@|$PORT|g; s|@RUNDIR@|$DIR|g" "$HERE/$NAME.conf.in" >"$DIR/$NAME.conf"
  hard=$(ulimit -Hn)
  if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then want=65536; else want=$hard; fi
  ulimit -n "$want"
  pin=()
  [ -n "$CPU" ] && pin=(taskset -c "$CPU")
  case "$NAME" in
    ngircd) cmd=(ngircd --nodaemon --config "$DIR/ngircd.conf") ;;
    inspircd) cmd=(inspircd --nofork --runasroot --config="$DIR/inspircd.conf") ;;
  esac
  # taskset execs the server, so $! is the server's own PID.
  nohup "${pin[@]}" "${cmd[@]}" >"$DIR/stdout.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PIDFILE"
  for _ in $(seq 100); do
    port_open "$PORT" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! port_open "$PORT"; then
    echo "$NAME did not start listening on $PORT; log tail:" >&2
    tail -5 "$DIR/stdout.log" >&2 || true
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
    exit 1
  fi
  echo "$pid"
  ;;
stop)
  [ -f "$PIDFILE" ] || { echo "no PID file for $NAME on $PORT" >&2; exit 1; }
  pid=$(cat "$PIDFILE")
  if alive "$pid"; then
    kill -TERM "$pid"
    for _ in $(seq 200); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -KILL "$pid"; echo "$NAME ($pid) killed with SIGKILL" >&2; fi
  fi
  rm -f "$PIDFILE"
  ;;
pid)
  [ -f "$PIDFILE" ] && alive "$(cat "$PIDFILE")" && cat "$PIDFILE"
  ;;
*) usage ;;
esac

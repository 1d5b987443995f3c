#!/usr/bin/env bash
# Runs irctest (github.com/progval/irctest), the IRC servers' conformance
# suite, against chatter: the single-server modules, selection
#   not Ergo and not deprecated and not strict and not services
# once per model, with conformance/irctest_controller.py starting a fresh
# chatter on 127.0.0.1 for every test. Results and how to read them:
# docs/CONFORMANCE.md.
#
# usage: conformance/run.sh [MODEL...]      (default: iterative prethread prefork)
#
# A MODEL may also be a peer, `inspircd` or `ngircd` (Debian's packages),
# run with irctest's own controller for that server over the same
# selection, so that the figures compare test for test.
#
# Environment:
#   IRCTEST_DIR        an irctest checkout to use as it is (default: a clone
#                      of /work/.mirror/progval+irctest/repo if it exists,
#                      else of https://github.com/progval/irctest, at the
#                      pinned commit, in the cache)
#   CONFORMANCE_CACHE  where the clone, the venv and the results go
#                      (default: target/conformance)
#   CHATTER_BIN        the chatter binary (default: target/release/chatter,
#                      built with `cargo build --release` first)
#   PYTEST_ARGS        extra pytest arguments, e.g. '-k Topic' or
#                      'irctest/server_tests/topic.py' to run one module
#   RUN_TIMEOUT        seconds one model's run may take (default 1800)
#
# Needs git, python3 (3.8+, with venv) and the network for `pip install`
# (and for the clone when there is no local mirror). Everything the tests
# do is on 127.0.0.1; the script stops the servers it started, by PID.
# Exit status: 0 when every model's run completed (failing tests included),
# 1 when a run could not complete.
set -euo pipefail

IRCTEST_COMMIT=b00c039766f5c497920dd787f7cb0e0005bd5ce0
IRCTEST_MIRROR=/work/.mirror/progval+irctest/repo
IRCTEST_URL=https://github.com/progval/irctest
SELECTION='not Ergo and not deprecated and not strict and not services'

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${CONFORMANCE_CACHE:-$repo/target/conformance}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

models=("$@")
[ ${#models[@]} -gt 0 ] || models=(iterative prethread prefork)
for m in "${models[@]}"; do
    case $m in
    iterative | prethread | prefork | inspircd | ngircd) ;;
    *)
        echo "unknown model: $m (iterative, prethread, prefork, or a peer: inspircd, ngircd)" >&2
        exit 2
        ;;
    esac
done

# irctest's source, at the pinned commit.
if [ -n "${IRCTEST_DIR:-}" ]; then
    irctest=$(cd "$IRCTEST_DIR" && pwd)
    head=$(git -C "$irctest" rev-parse HEAD 2>/dev/null || echo unknown)
    [ "$head" = "$IRCTEST_COMMIT" ] ||
        echo "note: $irctest is at $head, not the pinned $IRCTEST_COMMIT" >&2
else
    irctest=$cache/irctest
    if [ ! -d "$irctest/.git" ]; then
        src=$IRCTEST_URL
        [ -d "$IRCTEST_MIRROR" ] && src=$IRCTEST_MIRROR
        echo "== cloning irctest from $src"
        rm -rf "$irctest"
        git clone --quiet "$src" "$irctest"
    fi
    if [ "$(git -C "$irctest" rev-parse HEAD 2>/dev/null)" != "$IRCTEST_COMMIT" ]; then
        git -C "$irctest" checkout --quiet --detach "$IRCTEST_COMMIT" 2>/dev/null || {
            git -C "$irctest" fetch --quiet origin
            git -C "$irctest" checkout --quiet --detach "$IRCTEST_COMMIT"
        }
    fi
fi
echo "== irctest $(git -C "$irctest" rev-parse --short HEAD 2>/dev/null || echo '?') in $irctest"

# A venv with irctest's requirements, made once per requirements file.
venv=$cache/venv
stamp=$venv/.requirements.sha256
want=$(sha256sum "$irctest/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "== venv in $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$irctest/requirements.txt"
    echo "$want" >"$stamp"
fi

# chatter itself.
if [ -z "${CHATTER_BIN:-}" ]; then
    echo "== cargo build --release"
    (cd "$repo" && cargo build --release --quiet)
    export CHATTER_BIN=$repo/target/release/chatter
fi
[ -x "$CHATTER_BIN" ] || {
    echo "no chatter binary at $CHATTER_BIN" >&2
    exit 1
}

out=$cache/results
mkdir -p "$out"
pids=$cache/pids # the controller keeps a file per running chatter here
mkdir -p "$pids"
export CHATTER_PID_DIR=$pids

# Stops what this script started and is still running: the chatter servers
# the controller recorded (each is its own process group).
cleanup() {
    local f pid
    for f in "$pids"/*; do
        [ -e "$f" ] || continue
        pid=${f##*/}
        if [ -r "/proc/$pid/cmdline" ] &&
            tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--server-name My.Little.Server"; then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            sleep 1
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
}
trap cleanup EXIT
cleanup # leftovers of an earlier run that was killed

# irctest keeps its list of ports in use in the temporary directory; a
# directory of this run's own keeps it apart from any other irctest run.
export TMPDIR=$cache/tmp
mkdir -p "$TMPDIR"

# irctest's InspIRCd controller needs help to start Debian's InspIRCd
# (see conformance/peers/inspircd); that directory goes first on PATH for
# the peer runs only.
peers=$repo/conformance/peers

status=0
for model in "${models[@]}"; do
    echo "== $model: irctest (${SELECTION})"
    rm -f "$out/$model.xml"
    start=$(date +%s)
    case $model in
    inspircd | ngircd) controller=irctest.controllers.$model path=$peers:$PATH ;;
    *) controller=conformance.irctest_controller path=$PATH ;;
    esac
    set +e
    # shellcheck disable=SC2086 # PYTEST_ARGS is split on purpose
    (cd "$irctest" &&
        PATH=$path CHATTER_MODEL=$model PYTHONPATH="$repo:$irctest" \
            timeout -s INT -k 60 "${RUN_TIMEOUT:-1800}" \
            "$venv/bin/python" -m pytest -p no:cacheprovider -q \
            --controller "$controller" \
            -m "$SELECTION" \
            --junitxml="$out/$model.xml" \
            ${PYTEST_ARGS:-irctest/server_tests/}) >"$out/$model.log" 2>&1
    rc=$?
    set -e
    cleanup
    echo "   $(tail -n 1 "$out/$model.log") [exit $rc, $(($(date +%s) - start)) s, log $out/$model.log]"
    # pytest: 0 all passed, 1 some failed; anything else means no full run.
    if [ $rc -gt 1 ] || [ ! -s "$out/$model.xml" ]; then
        status=1
    fi
done

xmls=()
for model in "${models[@]}"; do
    [ -s "$out/$model.xml" ] && xmls+=("$out/$model.xml")
done
if [ ${#xmls[@]} -gt 0 ]; then
    python3 "$repo/conformance/summarize.py" "${xmls[@]}" >"$out/summary.md"
    sed -n '/^| module/,/^Failures (/p' "$out/summary.md" | sed '$d'
    echo "== summary (per module, failures, skips with reasons): $out/summary.md"
    echo "== junit XML: ${xmls[*]}"
fi
exit $status

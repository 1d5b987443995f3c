#!/usr/bin/env python3
"""Probe a chatter build the way an attacker would, under every model, and
print the figures docs/RELIABILITY.md quotes.

Usage: scripts/reliability_probe.py [path/to/chatter]   (default: target/release/chatter)

Each probe starts its own server on 127.0.0.1 with an ephemeral port, talks
to it over raw sockets, and stops it (by PID) when done. Everything is
bounded in time. The behaviour itself is asserted by the tests in tests/;
this script only measures what they show.
"""

import os
import socket
import subprocess
import sys
import time

CHATTER = sys.argv[1] if len(sys.argv) > 1 else "target/release/chatter"
MODELS = [["--model", "iterative"], ["--model", "prethread", "--workers", "2"], ["--model", "prefork", "--workers", "2"]]


class Server:
    def __init__(self, model, extra=(), open_files=None, log=None):
        cmd = [CHATTER, "serve", "--listen", "127.0.0.1:0", *model, *extra]
        if open_files:
            cmd = ["sh", "-c", f'ulimit -n {open_files} && exec "$0" "$@"', *cmd]
        env = dict(os.environ, RUST_LOG="warn")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log or subprocess.DEVNULL, env=env)
        line = self.proc.stdout.readline().decode()
        host, port = line.strip().removeprefix("listening on ").rsplit(":", 1)
        self.addr = (host, int(port))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def rss_kib(self):
        """Peak RSS of the server and its children (prefork workers)."""
        total = 0
        pids = [self.proc.pid] + children(self.proc.pid)
        for pid in pids:
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError):
                pass
    return found


class Client:
    def __init__(self, server, nick=None):
        self.sock = socket.create_connection(server.addr, timeout=20)
        self.buf = b""
        self.lines = []
        self.closed = False
        if nick:
            self.send(f"NICK {nick}\r\nUSER {nick[:10]} 0 * :{nick}\r\n")
            self.until(lambda l: " 376 " in l or " 422 " in l)

    def send(self, text):
        self.sock.sendall(text.encode() if isinstance(text, str) else text)

    def read(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except (socket.timeout, BlockingIOError):
            return
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return
        self.buf += data
        while b"\r\n" in self.buf:
            line, self.buf = self.buf.split(b"\r\n", 1)
            self.lines.append(line.decode(errors="replace"))

    def until(self, match, limit=30):
        deadline = time.time() + limit
        seen = len(self.lines)
        while time.time() < deadline:
            for i in range(seen, len(self.lines)):
                if match(self.lines[i]):
                    return self.lines[i]
            seen = len(self.lines)
            if self.closed:
                return None
            self.read(0.2)
        return None

    def sync(self, token="sync"):
        self.send(f"PING {token}\r\n")
        return self.until(lambda l: l.endswith(token))

    def read_to_close(self, limit=30):
        deadline = time.time() + limit
        while not self.closed and time.time() < deadline:
            self.read(0.2)
        return self.closed


def name(model):
    return model[1]


def probe_injection(model):
    s = Server(model)
    c = Client(s)
    c.send("NICK mallory\r\nUSER x\0QUIT\0: 0 * :r\r\n")
    reply = c.until(lambda l: " 468 " in l or " 001 " in l)
    bob = Client(s, "bob")
    bob.send("JOIN #c\r\n")
    bob.sync()
    n = "n23456789012345678901234567890"
    long = Client(s, n)
    long.send("JOIN #c\r\n")
    bob.until(lambda l: "JOIN #c" in l and l.startswith(f":{n}"))
    head = "PRIVMSG #c :"
    long.send(head + "x" * (510 - len(head)) + "\r\n")
    relay = bob.until(lambda l: "PRIVMSG #c :x" in l)
    s.stop()
    return f"USER with NUL: `{reply.split(' ', 1)[1]}`; 510-byte PRIVMSG from a 30-character nick relayed as {len(relay) + 2} bytes"


def probe_slowloris(model):
    s = Server(model, ["--registration-timeout", "5"])
    sock = socket.create_connection(s.addr)
    sock.settimeout(0.2)
    start = time.time()
    got = b""
    while time.time() - start < 30:
        try:
            sock.sendall(b"x")
        except OSError:
            pass
        try:
            data = sock.recv(4096)
            if not data:
                break
            got += data
        except socket.timeout:
            pass
        except OSError:
            break
    took = time.time() - start
    s.stop()
    last = got.decode(errors="replace").strip().splitlines()[-1]
    return f"byte-a-second client closed after {took:.1f} s (`--registration-timeout 5`): `{last}`"


def probe_flood(model):
    s = Server(model)
    watcher = Client(s, "watcher")
    watcher.send("JOIN #c\r\n")
    watcher.sync()
    flooder = Client(s, "flooder")
    flooder.send("JOIN #c\r\n")
    flooder.sync()
    start = time.time()
    flooder.send("".join(f"PRIVMSG #c :line {i} {'p' * 90}\r\n" for i in range(40)))
    watcher.until(lambda l: ":line 39 " in l, 30)
    paced = time.time() - start
    time.sleep(5)  # long enough to earn the burst back
    burst = "".join(f"PRIVMSG #c :more {i} {'p' * 90}\r\n" for i in range(200))
    start = time.time()
    try:
        flooder.send(burst)
    except OSError:
        pass
    closing = flooder.until(lambda l: l.startswith("ERROR"), 30)
    dropped = time.time() - start
    relayed = sum(1 for l in watcher.lines if ":more " in l)
    watcher.sync()
    relayed = sum(1 for l in watcher.lines if ":more " in l)
    s.stop()
    return (
        f"40 lines (one write, defaults): all relayed in order over {paced:.1f} s; "
        f"200 more: {relayed} relayed, then `{closing}` after {dropped:.2f} s"
    )


def probe_amplification(model):
    s = Server(model)
    alice = Client(s, "alice")
    alice.send("JOIN #c\r\n")
    bob = Client(s, "bob")
    bob.send("JOIN #c\r\n")
    bob.sync()
    alice.send("PRIVMSG " + ",".join(["#c"] * 100) + " :once\r\n")
    alice.sync("a1")
    bob.sync("b1")
    copies = sum(1 for l in bob.lines if l.endswith(":once"))
    # 120 short unknown nicks, so that the line fits in 512 bytes.
    ghosts = [f"q{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(120)]
    alice.send("PRIVMSG " + ",".join(ghosts) + " :hi\r\n")
    alice.sync("a2")
    e401 = sum(1 for l in alice.lines if " 401 " in l)
    e407 = sum(1 for l in alice.lines if " 407 " in l)
    joins = ",".join(f"#j{i}" for i in range(60))
    alice.send(f"JOIN {joins}\r\n")
    alice.sync("a3")
    refused = next(l for l in alice.lines if " 405 " in l)
    s.stop()
    return (
        f"`#c` ×100: {copies} copy; 120 unknown nicks: {e401} × 401 + {e407} × 407; "
        f"JOIN of 60 channels: 405 at `{refused.split()[3]}`"
    )


def probe_list(model):
    s = Server(model, ["--max-channels-per-client", "10000", "--no-flood-control"])
    creator = Client(s, "creator")
    names = [f"#channel{i:05}" for i in range(10000)]
    for i in range(0, len(names), 35):
        creator.send("JOIN " + ",".join(names[i : i + 35]) + "\r\n")
    creator.sync()
    rss_before = s.rss_kib()
    asker = Client(s, "asker")
    start = time.time()
    asker.send("LIST\r\n")
    end = asker.until(lambda l: " 323 " in l, 60)
    took = time.time() - start
    listed = sum(1 for l in asker.lines if " 322 " in l)
    size = sum(len(l) + 2 for l in asker.lines if " 322 " in l)
    alive = asker.sync() is not None
    rss_after = s.rss_kib()
    s.stop()
    return (
        f"LIST of {listed} channels ({size / 1024:.0f} KiB, sendq 256 KiB): whole in {took:.2f} s, "
        f"{'still connected' if alive and end else 'DROPPED'}; server peak RSS {rss_before // 1024} → {rss_after // 1024} MiB"
    )


def probe_terminal(model):
    s = Server(model)
    irc = Client(s, "ircy")
    irc.send("JOIN #lobby\r\n")
    irc.sync()
    plain = Client(s)
    plain.send("nelly\r\n")
    plain.until(lambda l: "In #lobby" in l)
    irc.send("PRIVMSG #lobby :\x1b[2K\x1b[1Gbob: forged\r\n")
    shown = plain.until(lambda l: l.startswith("ircy: "))
    s.stop()
    return f"ESC from an IRC user shown to nc as `{shown}`"


def probe_emfile(model):
    log_path = f"/tmp/chatter-probe-emfile-{os.getpid()}.log"
    with open(log_path, "wb") as log:
        s = Server(model, open_files=64, log=log)
        alice = Client(s, "alice")
        crowd = []
        for _ in range(200):
            try:
                crowd.append(socket.create_connection(s.addr, timeout=2))
            except OSError:
                break
        time.sleep(5)
        alive = alice.sync() is not None
        s.stop()
    with open(log_path) as f:
        warnings = sum(1 for l in f if "accept:" in l)
    os.unlink(log_path)
    for sock in crowd:
        sock.close()
    return f"64 descriptors, {len(crowd)} connections, 5 s: {warnings} warning line(s), existing client {'served' if alive else 'NOT served'}"


PROBES = [
    ("injection and line length", probe_injection),
    ("slowloris", probe_slowloris),
    ("flood control", probe_flood),
    ("amplification and limits", probe_amplification),
    ("long replies", probe_list),
    ("plain terminal", probe_terminal),
    ("descriptor exhaustion", probe_emfile),
]

if __name__ == "__main__":
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"chatter {CHATTER} at {commit}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| probe | model | what it showed |")
    print("|---|---|---|")
    for title, probe in PROBES:
        for model in MODELS:
            try:
                result = probe(model)
            except Exception as e:  # a probe that fails says so, in the table
                result = f"FAILED: {e!r}"
            print(f"| {title} | {name(model)} | {result} |", flush=True)

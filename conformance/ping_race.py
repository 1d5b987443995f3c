"""Measures the race irctest's websocket tests run into (docs/CONFORMANCE.md,
"Why the websocket tests get sync_sleep_time"): a sender sends a PRIVMSG to
`bee` and `bee` at once sends PING on its own connection; counts how often
the PONG reaches `bee` before the PRIVMSG does.

usage: python ping_race.py tcp|ws TRIALS [PLAIN_ADDR] [WS_URL]
  (defaults 127.0.0.1:17001 and ws://127.0.0.1:17002/, a chatter started
   with --listen and --ws-listen on them). Needs the `websockets` package
   (irctest's venv has it).
"""

import socket
import sys

from websockets.sync.client import connect


class TcpClient:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.pending = b""

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def recv(self):
        while b"\n" not in self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("server closed the connection")
            self.pending += data
        line, self.pending = self.pending.split(b"\n", 1)
        return line.rstrip(b"\r").decode()


class WebClient:
    def __init__(self, url):
        self.conn = connect(url, subprotocols=["text.ircv3.net"])

    def send(self, line):
        self.conn.send(line)

    def recv(self):
        return self.conn.recv(timeout=10)


def register(client, nick):
    client.send(f"NICK {nick}")
    client.send(f"USER {nick} 0 * :{nick}")
    while client.recv().split(" ")[1:2] != ["001"]:
        pass
    client.send("PING :registered")
    while "registered" not in client.recv():
        pass


def main():
    kind, trials = sys.argv[1], int(sys.argv[2])
    plain = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1:17001"
    url = sys.argv[4] if len(sys.argv) > 4 else "ws://127.0.0.1:17002/"
    bee = TcpClient(plain)
    register(bee, "bee")
    sender = WebClient(url) if kind == "ws" else TcpClient(plain)
    register(sender, "ay")
    pong_first = 0
    for trial in range(trials):
        sender.send(f"PRIVMSG bee :m{trial}")
        bee.send(f"PING :t{trial}")
        order = []
        while len(order) < 2:
            line = bee.recv()
            if line.endswith(f"m{trial}"):
                order.append("line")
            elif line.endswith(f"t{trial}"):
                order.append("pong")
        pong_first += order[0] == "pong"
    print(f"{kind} sender: PONG first in {pong_first} of {trials}")


if __name__ == "__main__":
    main()

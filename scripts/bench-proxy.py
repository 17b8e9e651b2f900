#!/usr/bin/env python3
"""A counting TCP relay for the benchmarks (scripts/bench-scale.sh).

    bench-proxy.py LISTEN_PORT UPSTREAM_PORT LOG [MAX_SECONDS]

Listens on 127.0.0.1:LISTEN_PORT and relays every connection byte for byte
to 127.0.0.1:UPSTREAM_PORT, so any client (tagtrust, python-tuf, the notary
CLI) can be pointed at it unchanged. It never parses more than the first
line of each request and response. HTTP/1.1 clients send one request and
wait for its answer before the next (none of these pipelines), so each turn
of a connection (client bytes, then server bytes) is one exchange; per
exchange it appends one JSON line to LOG:

    {"method", "path", "status", "up": bytes sent by the client,
     "down": bytes sent by the server (headers included: what is on the wire),
     "server_ms": from the last request byte to the last response byte}

`server_ms` is the server's share of the exchange: loopback adds
microseconds. Exits after MAX_SECONDS (default 3600) whatever happens.
"""
import json
import select
import socket
import sys
import threading
import time

listen_port, upstream_port, log_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
max_seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 3600.0
log_lock = threading.Lock()


def log(entry):
    with log_lock, open(log_path, "a") as f:
        f.write(json.dumps(entry) + "\n")


def first_line(data):
    return data.split(b"\r\n", 1)[0].decode("latin-1")


def relay(client):
    upstream = socket.create_connection(("127.0.0.1", upstream_port))
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    turn = None  # the exchange in progress

    def finish():
        if turn and turn["down"]:
            parts = turn["request"].split(" ")
            status = turn["response"].split(" ")
            log({
                "method": parts[0],
                "path": parts[1] if len(parts) > 1 else "",
                "status": int(status[1]) if len(status) > 1 and status[1].isdigit() else 0,
                "up": turn["up"],
                "down": turn["down"],
                "server_ms": round((turn["last_down"] - turn["last_up"]) * 1e3, 3),
            })

    try:
        while True:
            readable, _, _ = select.select([client, upstream], [], [], 120)
            if not readable:
                break
            for s in readable:
                data = s.recv(1 << 16)
                now = time.perf_counter()
                if not data:
                    finish()
                    return
                if s is client:
                    if turn is None or turn["down"]:
                        finish()
                        turn = {"request": first_line(data), "response": "", "up": 0, "down": 0}
                    turn["up"] += len(data)
                    turn["last_up"] = now
                    upstream.sendall(data)
                else:
                    if turn is None:
                        continue  # nothing asked: drop
                    if not turn["down"]:
                        turn["response"] = first_line(data)
                    turn["down"] += len(data)
                    turn["last_down"] = now
                    client.sendall(data)
    except OSError:
        finish()
    finally:
        client.close()
        upstream.close()


def main():
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(128)
    server.settimeout(1.0)
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        try:
            client, _ = server.accept()
        except socket.timeout:
            continue
        threading.Thread(target=relay, args=(client,), daemon=True).start()


if __name__ == "__main__":
    main()

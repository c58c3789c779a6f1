"""A tiny upstream DNS server for tests: answers every A query with one fixed
address, on UDP and TCP at 127.0.0.1:PORT, and stops by itself after a time."""
import socket
import socketserver
import struct
import sys
import threading

PORT = int(sys.argv[1])
ANSWER = socket.inet_aton(sys.argv[2])
LIFETIME = float(sys.argv[3]) if len(sys.argv) > 3 else 600


def reply(query):
    qid, _flags, qdcount = struct.unpack("!HHH", query[:6])
    end = 12
    while query[end] != 0:
        end += query[end] + 1
    question = query[12:end + 5]
    qtype = struct.unpack("!H", query[end + 1:end + 3])[0]
    answers = b""
    if qtype == 1:
        answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + ANSWER
    header = struct.pack("!HHHHHH", qid, 0x8180, 1, 1 if answers else 0, 0, 0)
    return header + question + answers


class UDP(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(reply(data), self.client_address)


class TCP(socketserver.BaseRequestHandler):
    def handle(self):
        length = struct.unpack("!H", self.request.recv(2))[0]
        data = self.request.recv(length)
        out = reply(data)
        self.request.sendall(struct.pack("!H", len(out)) + out)


for server in (socketserver.ThreadingUDPServer(("127.0.0.1", PORT), UDP),
               socketserver.ThreadingTCPServer(("127.0.0.1", PORT), TCP)):
    threading.Thread(target=server.serve_forever, daemon=True).start()
threading.Event().wait(LIFETIME)

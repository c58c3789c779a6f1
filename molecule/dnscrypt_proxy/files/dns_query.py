"""Ask SERVER:PORT for NAME's A records over UDP; print them one a line, or
the rcode name when there is no answer. Exit 0 when an answer arrived."""
import random
import socket
import struct
import sys

name, server, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
qid = random.randrange(65536)
question = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\x00"
query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", 1, 1)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(5)
sock.sendto(query, (server, port))
data = sock.recv(4096)
_id, flags, _qd, ancount = struct.unpack("!HHHH", data[:8])
pos = 12 + len(question) + 4
addresses = []
for _ in range(ancount):
    if data[pos] & 0xC0 == 0xC0:
        pos += 2
    else:
        while data[pos] != 0:
            pos += data[pos] + 1
        pos += 1
    rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", data[pos:pos + 10])
    pos += 10
    if rtype == 1:
        addresses.append(socket.inet_ntoa(data[pos:pos + 4]))
    pos += rdlen
rcodes = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}
print("\n".join(addresses) if addresses else rcodes.get(flags & 0xF, str(flags & 0xF)))

"""A small authoritative DNS server and a fake DigitalOcean DNS API, both on loopback.

The fake API is what lego's DigitalOcean provider talks to when ``DO_API_URL``
points at it (https://docs.digitalocean.com/reference/api/api-reference/#tag/Domain-Records):
``POST /v2/domains/<zone>/records`` creates a record and answers
``{"domain_record": {"id": N, ...}}``, ``DELETE /v2/domains/<zone>/records/<id>``
removes it. Records it holds are published at once by the DNS server, which is
authoritative for the zone (SOA, NS and the TXT records), so Pebble (started with
``-dnsserver``) validates against it and lego's propagation check asks it.
"""

from __future__ import annotations

import json
import socketserver
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class Zone:
    """The records of one zone, shared by the API (writes) and the DNS server (reads)."""

    def __init__(self, name: str):
        self.origin = dns.name.from_text(name)
        self.lock = threading.Lock()
        self.records: dict[int, dict] = {}
        self.next_id = 1000
        self.queries: list[tuple[str, str]] = []

    def add(self, rtype: str, name: str, data: str, ttl: int) -> dict:
        fqdn = dns.name.from_text(name) if name.endswith(".") else dns.name.from_text(name, self.origin)
        if name in ("@", ""):
            fqdn = self.origin
        with self.lock:
            self.next_id += 1
            rec = {"id": self.next_id, "type": rtype, "name": fqdn.to_text(), "data": data, "ttl": ttl}
            self.records[rec["id"]] = rec
        return rec

    def delete(self, rec_id: int) -> bool:
        with self.lock:
            return self.records.pop(rec_id, None) is not None

    def txt(self, qname: dns.name.Name) -> list[dict]:
        with self.lock:
            return [r for r in self.records.values() if r["type"] == "TXT" and dns.name.from_text(r["name"]) == qname]

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        resp = dns.message.make_response(query)
        resp.flags |= 0x0400  # AA: authoritative
        question = query.question[0]
        qname, qtype = question.name, question.rdtype
        with self.lock:
            self.queries.append((qname.to_text(), dns.rdatatype.to_text(qtype)))
        soa = dns.rrset.from_text(self.origin, 60, "IN", "SOA",
                                  "ns1.%s hostmaster.%s 1 3600 600 86400 60" % (self.origin, self.origin))
        if not qname.is_subdomain(self.origin):
            resp.set_rcode(dns.rcode.REFUSED)
            return resp.to_wire()
        if qname == self.origin and qtype == dns.rdatatype.SOA:
            resp.answer.append(soa)
        elif qname == self.origin and qtype == dns.rdatatype.NS:
            resp.answer.append(dns.rrset.from_text(self.origin, 60, "IN", "NS", "ns1.%s" % self.origin))
        elif qtype == dns.rdatatype.TXT and self.txt(qname):
            values = ['"%s"' % r["data"] for r in self.txt(qname)]
            resp.answer.append(dns.rrset.from_text_list(qname, 30, "IN", "TXT", values))
        else:
            resp.authority.append(soa)
            if not self.txt(qname) and qname != self.origin:
                resp.set_rcode(dns.rcode.NXDOMAIN)
        return resp.to_wire()


class _UDP(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(self.server.zone.answer(data), self.client_address)


class _TCP(socketserver.BaseRequestHandler):
    def handle(self):
        head = self.request.recv(2)
        if len(head) < 2:
            return
        (length,) = struct.unpack("!H", head)
        data = b""
        while len(data) < length:
            chunk = self.request.recv(length - len(data))
            if not chunk:
                return
            data += chunk
        out = self.server.zone.answer(data)
        self.request.sendall(struct.pack("!H", len(out)) + out)


class _UDPServer(socketserver.ThreadingUDPServer):
    daemon_threads = True


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class DNSServer:
    """UDP and TCP on the same loopback port."""

    def __init__(self, zone: Zone):
        self.zone = zone
        for _attempt in range(20):
            self.udp = _UDPServer(("127.0.0.1", 0), _UDP)
            port = self.udp.server_address[1]
            try:
                self.tcp = _TCPServer(("127.0.0.1", port), _TCP)
                break
            except OSError:
                self.udp.server_close()
        else:
            raise RuntimeError("no free port for both UDP and TCP")
        self.port = port
        self.udp.zone = self.tcp.zone = zone
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (self.udp, self.tcp)]

    @property
    def address(self) -> str:
        return "127.0.0.1:%d" % self.port

    def start(self) -> DNSServer:
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        for s in (self.udp, self.tcp):
            s.shutdown()
            s.server_close()


class FakeDigitalOcean:
    """The Domain Records part of DigitalOcean's API, for one zone and one token."""

    def __init__(self, zone: Zone, token: str):
        self.zone, self.token = zone, token
        self.log: list[tuple[str, str, int]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: dict | None = None):
                api.log.append((self.command, self.path, status))
                raw = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") != "Bearer %s" % api.token:
                    self._reply(401, {"id": "unauthorized", "message": "Unable to authenticate you"})
                    return False
                return True

            def _zone_path(self) -> list[str] | None:
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) >= 4 and parts[:2] == ["v2", "domains"] and parts[3] == "records" \
                        and dns.name.from_text(parts[2]) == api.zone.origin:
                    return parts
                self._reply(404, {"id": "not_found", "message": "The resource you requested could not be found."})
                return None

            def do_POST(self):  # noqa: N802 (http.server's naming)
                if not self._authorized():
                    return
                parts = self._zone_path()
                if parts is None or len(parts) != 4:
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if body.get("type") != "TXT" or not body.get("name") or not body.get("data"):
                    self._reply(422, {"id": "unprocessable_entity", "message": "type, name and data are required"})
                    return
                rec = api.zone.add("TXT", body["name"], body["data"], int(body.get("ttl") or 30))
                self._reply(201, {"domain_record": rec})

            def do_DELETE(self):  # noqa: N802
                if not self._authorized():
                    return
                parts = self._zone_path()
                if parts is None or len(parts) != 5:
                    return
                ok = parts[4].isdigit() and api.zone.delete(int(parts[4]))
                self._reply(204 if ok else 404, None if ok else {"id": "not_found", "message": "no such record"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def start(self) -> FakeDigitalOcean:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

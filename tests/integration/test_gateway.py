#!/usr/bin/env python3
"""The gateway as an integrator meets it: real daemon processes (or
FakeUpstreams playing them) and a real pm-gateway on a free loopback port.

- the API: any method by JSON, status mapping (200/400/404/409/503 with
  Retry-After), Idempotency-Key, body limit, wrong routes;
- tokens and roles: 401 and 403, counted in /metrics;
- the event stream: replay then live, resumed with Last-Event-ID (also after
  the gateway was killed), from=SOURCE:SEQ, filters;
- webhooks, with local receivers: a slow one never delays a fast one; a
  failing one climbs the retry ladder on the manual clock, pauses after three
  days and shows in ops.queues, and `pmctl webhook resume` continues in order;
  one that answers 2xx twice for the same Webhook-Id when the gateway died
  before it heard the first answer;
- TLS with a configured certificate, and no plain HTTP beyond loopback."""
import base64
import csv
import hashlib
import hmac
import http.client
import http.server
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, SOURCE, Cluster, FakeUpstream, generated_protos, poll  # noqa: E402

generated_protos()
from pm.v1 import billing_pb2 as B  # noqa: E402
from pm.v1 import intake_pb2 as I  # noqa: E402

GEN = os.path.join(SOURCE, "tests/support/gen_units.py")
SECRET = "whsec-integration-test-0001"


class Gateway:
    """The gateway of a cluster, over HTTP."""

    def __init__(self, cluster):
        self.c = cluster
        self.refresh()

    def refresh(self):
        st = json.loads(self.c.pmctl("--json", "call", "gateway", "gateway.status").stdout)["gateway_status"]
        self.url = st["url"]
        self.port = st["port"]

    def token(self, name, role):
        out = self.c.pmctl("--json", "token", "create", name, "--role", role).stdout
        return json.loads(out)["token"]

    def request(self, verb, path, body=None, token=None, headers=None, raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h["Content-Type"] = "application/json"
        conn.request(verb, path, body=data, headers=h)
        r = conn.getresponse()
        text = r.read().decode()
        conn.close()
        try:
            j = json.loads(text)
        except ValueError:
            j = None
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), j if j is not None else text

    def call(self, daemon, method, body=None, token=None, key=None):
        return self.request("POST", "/v1/%s/%s" % (daemon, method), body if body is not None else {}, token,
                            {"Idempotency-Key": key} if key else None)

    def metric(self, name, labels=""):
        _, _, text = self.request("GET", "/metrics")
        want = '%s{daemon="gateway"%s} ' % (name, "," + labels if labels else "")
        for line in text.splitlines():
            if line.startswith(want):
                return float(line[len(want):])
        return 0.0

    def clock(self, admin, by):
        st, _, j = self.call("gateway", "ops.clock", {"advance_by": by}, admin)
        assert st == 200, j
        return j["body"]["now_ms"]

    def hook(self, admin, hid):
        st, _, j = self.request("GET", "/v1/webhooks", token=admin)
        assert st == 200, j
        for w in j["body"].get("webhooks", []):
            if w["id"] == hid:
                return w
        return None


class Stream:
    """One SSE connection; events() yields (id, event dict) as they come."""

    def __init__(self, gw, token, query="", last_id=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20)
        h = {"Authorization": "Bearer " + token}
        if last_id:
            h["Last-Event-ID"] = last_id
        self.conn.request("GET", "/v1/events" + query, headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status

    def next(self):
        """The next event as (id, dict); comments and retry lines are skipped."""
        eid, data = None, None
        while True:
            line = self.resp.readline()
            if not line:
                raise AssertionError("stream ended")
            line = line.decode().rstrip("\n")
            if line == "":
                if data is not None:
                    return eid, json.loads(data)
                continue
            if line.startswith("id: "):
                eid = line[4:]
            elif line.startswith("data: "):
                data = line[6:]

    def take(self, n):
        return [self.next() for _ in range(n)]

    def close(self):
        self.conn.close()


class Receiver:
    """A webhook receiver on loopback. mode: ok | fail | slow | hold (the first
    request waits until release(), then answers 200)."""

    def __init__(self, mode="ok", delay=0.0):
        self.mode, self.delay = mode, delay
        self.got = []  # (webhook id, timestamp, signature valid, body)
        self.cond = threading.Condition()
        self.released = threading.Event()
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                wid, ts, sig = (self.headers.get("Webhook-Id"), self.headers.get("Webhook-Timestamp"),
                                self.headers.get("Webhook-Signature"))
                mac = hmac.new(SECRET.encode(), ("%s.%s." % (wid, ts)).encode() + body, hashlib.sha256).digest()
                valid = sig == "v1," + base64.b64encode(mac).decode()
                with me.cond:
                    first = not me.got
                    me.got.append((wid, ts, valid, body))
                    me.cond.notify_all()
                if me.mode == "slow":
                    time.sleep(me.delay)  # the receiver is slow: that is what is under test
                if me.mode == "hold" and first:
                    me.released.wait(60)
                code = 500 if me.mode == "fail" else 200
                reply = b"receiver is down for maintenance" if code == 500 else b"ok"
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the gateway is gone (the hold case)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self):
        with self.cond:
            return [g[0] for g in self.got]

    def count(self):
        with self.cond:
            return len(self.got)

    def close(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def rows_from_csv(units, seed=7, estate=None):
    fd, path = tempfile.mkstemp(suffix=".csv", dir="/tmp")
    os.close(fd)
    subprocess.run([sys.executable, GEN, path, "--units", str(units), "--seed", str(seed), "--estates", "1"],
                   check=True)
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, r in enumerate(csv.DictReader(f)):
            r["line"] = i + 2
            if estate:
                r["estate_id"] = estate
            rows.append(r)
    os.unlink(path)
    return rows


class GatewayTest(unittest.TestCase):
    env = {}

    def setUp(self):
        self.c = Cluster()
        self.c.env.update({"PM_GATEWAY_LISTEN": "127.0.0.1:0", "PM_GATEWAY_CALL_TIMEOUT_MS": "1500",
                           "PM_GATEWAY_MAX_BODY_BYTES": "65536"})
        self.c.env.update(self.env)
        self.fakes = []
        self.receivers = []

    def tearDown(self):
        for r in self.receivers:
            r.close()
        # a clean stop, and under the sanitizer build nothing it reports (leaks are reported at exit)
        if "gateway" in self.c.procs:
            self.c.kill("gateway", signal.SIGTERM)
            log = self.c.read("gateway.log")
            for bad in ("Sanitizer", "runtime error:"):
                self.assertNotIn(bad, log, log[-4000:])
        for f in self.fakes:
            f.close()
        self.c.close()

    def fake(self, name):
        f = FakeUpstream(self.c, name)
        self.fakes.append(f)
        return f

    def receiver(self, *a, **k):
        r = Receiver(*a, **k)
        self.receivers.append(r)
        return r

    def gateway(self, *others):
        self.c.start(*(list(others) + ["gateway"]))
        return Gateway(self.c)

    def applied(self, source, seq):
        return lambda: self.c.metric("gateway", "pm_consumer_applied_seq", 'source="%s"' % source) == seq


class Api(GatewayTest):
    def test_calls_and_status_mapping(self):
        gw = self.gateway("intake")
        op = gw.token("front-desk", "operator")
        admin = gw.token("root", "admin")
        rows = rows_from_csv(3, estate="E07")
        body = {"batch_id": "api-1", "chunk_no": 1, "file_name": "api.csv", "rows": rows}
        st, h, j = gw.call("intake", "intake.import", body, op, key="import-0001")
        self.assertEqual(st, 200, j)
        self.assertEqual(j["status"], "OK")
        self.assertEqual(j["id"], "import-0001")
        self.assertEqual(h["idempotency-key"], "import-0001")
        self.assertEqual(j["body"]["created"], 3)
        seq = gw.call("intake", "ops.ping", {}, op)[2]["body"]["last_seq"]
        # the same key again: the first answer, nothing applied twice
        st, _, j2 = gw.call("intake", "intake.import", body, op, key="import-0001")
        self.assertEqual((st, j2["body"]), (200, j["body"]))
        self.assertEqual(gw.call("intake", "ops.ping", {}, op)[2]["body"]["last_seq"], seq)
        # without a key, one is made and returned
        st, h, j = gw.call("intake", "intake.unit.get", {"unit_id": "E07/1/101"}, op)
        self.assertEqual(st, 200, j)
        self.assertEqual(j["body"]["unit"]["estate_id"], "E07")
        self.assertEqual(len(h["idempotency-key"]), 26)
        self.assertEqual(j["id"], h["idempotency-key"])
        # the short form of a method
        self.assertEqual(gw.call("intake", "unit.get", {"unit_id": "E07/1/101"}, op)[0], 200)
        # NOT_FOUND 404 and INVALID 400, with the daemon's message
        st, _, j = gw.call("intake", "intake.unit.get", {"unit_id": "E07/9-999"}, op)
        self.assertEqual((st, j["status"]), (404, "NOT_FOUND"))
        self.assertIn("E07/9-999", j["message"])
        st, _, j = gw.call("intake", "intake.import", {"batch_id": "x", "rows": [{"line": 2}]}, op)
        self.assertEqual(st, 200, j)  # a row rejected is still an OK import
        self.assertEqual(j["body"]["rejected"], 1)
        st, _, j = gw.call("intake", "intake.estate.get", {"estate_id": ""}, op)
        self.assertEqual((st, j["status"]), (400, "INVALID"))
        self.assertIn("estate_id", j["message"])
        # CONFLICT 409: the manual clock is off here
        st, _, j = gw.call("intake", "ops.clock", {"advance_by": "1h"}, admin)
        self.assertEqual((st, j["status"]), (409, "CONFLICT"))
        self.assertIn("manual_clock", j["message"])
        # UNAVAILABLE 503 with Retry-After: billing is not running (found out by
        # the gateway's connection to it, not by waiting call_timeout_ms)
        st, h, j = gw.call("billing", "billing.unit.get", {"unit_id": "E07/1/101"}, op)
        self.assertEqual((st, j["status"]), (503, "UNAVAILABLE"))
        self.assertEqual(h["retry-after"], "5")
        self.assertIn("billing.unit.get: billing is not running or cannot be reached", j["message"])
        self.assertEqual(gw.metric("gateway_calls_down_total"), 1)
        self.assertEqual(gw.metric("gateway_call_timeouts_total"), 0)
        # what the gateway refuses by itself
        st, _, j = gw.call("nosuch", "x.y", {}, op)
        self.assertEqual(st, 404)
        self.assertIn("intake", j["message"])
        st, _, j = gw.call("intake", "intake.no.such", {}, op)
        self.assertEqual(st, 404)
        st, _, j = gw.call("intake", "billing.unit.get", {"unit_id": "x"}, op)
        self.assertEqual(st, 400)
        self.assertIn("/v1/billing/billing.unit.get", j["message"])
        st, _, j = gw.request("POST", "/v1/intake/intake.unit.get", token=op, raw=b"{not json")
        self.assertEqual((st, j["status"]), (400, "INVALID"))
        st, _, j = gw.call("intake", "intake.unit.get", {"unit_idd": "x"}, op)
        self.assertEqual(st, 400)
        self.assertIn("unit_idd", j["message"])
        st, h, _ = gw.request("GET", "/v1/intake/intake.unit.get", token=op)
        self.assertEqual((st, h["allow"]), (405, "POST"))
        st, _, j = gw.request("POST", "/v1/intake/intake.import", token=op, raw=b"{" + b" " * 70000 + b"}")
        self.assertEqual((st, j["status"]), (413, "TOO_LARGE"))
        self.assertIn("max_body_bytes", j["message"])
        st, _, _ = gw.request("GET", "/v1/nothing/here/at/all")
        self.assertEqual(st, 404)
        self.assertGreaterEqual(gw.metric("gateway_http_responses_total", 'code="413"'), 1)

    def test_tokens_and_roles(self):
        gw = self.gateway("intake")
        integ = gw.token("erp", "integration")
        fin = gw.token("finance-1", "finance")
        op = gw.token("desk", "operator")
        admin = gw.token("root", "admin")
        row = {"batch_id": "r", "rows": rows_from_csv(1, seed=3, estate="E08")}
        before401 = gw.metric("gateway_auth_failures_total", 'code="401"')
        st, h, j = gw.call("intake", "intake.unit.get", {"unit_id": "E01/1/101"})
        self.assertEqual((st, j["status"]), (401, "UNAUTHENTICATED"))
        self.assertIn("Bearer", h["www-authenticate"])
        self.assertEqual(gw.call("intake", "intake.unit.get", {}, "pmk_" + "x" * 43)[0], 401)
        self.assertEqual(gw.request("GET", "/v1/events", token="nope")[0], 401)
        self.assertEqual(gw.metric("gateway_auth_failures_total", 'code="401"'), before401 + 3)
        # each role may read; writes go by role
        for t in (integ, fin, op, admin):
            self.assertEqual(gw.call("intake", "intake.estate.get", {"estate_id": "E01"}, t)[0], 404)
            self.assertEqual(gw.call("intake", "ops.queues", {}, t)[0], 200)
        for t, who in ((integ, "integration"), (fin, "finance")):
            st, _, j = gw.call("intake", "intake.import", row, t)
            self.assertEqual((st, j["status"]), (403, "FORBIDDEN"))
            self.assertIn("role " + who, j["message"])
        self.assertEqual(gw.call("intake", "intake.import", row, op)[0], 200)
        self.assertEqual(gw.call("billing", "ops.rebuild", {"source": "intake"}, fin)[0], 403)
        self.assertEqual(gw.request("GET", "/v1/webhooks", token=op)[0], 403)
        st, _, j = gw.request("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/x", "secret": SECRET}, token=integ)
        self.assertEqual(st, 403)
        # tokens are never made over HTTP
        st, _, j = gw.call("gateway", "gateway.token.create", {"name": "x", "role": "admin", "token": "y" * 40}, admin)
        self.assertEqual(st, 403)
        self.assertIn("pmctl", j["message"])
        self.assertEqual(gw.metric("gateway_auth_failures_total", 'code="403"'), 6)  # (and one more below)
        # a request's actor is its token's name
        st, _, j = gw.request("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/x", "secret": SECRET}, token=admin)
        self.assertEqual(st, 200, j)
        self.assertEqual(j["body"]["webhook"]["created_by"], "root")
        hid = j["body"]["webhook"]["id"]
        st, _, j = gw.request("POST", "/v1/webhooks/%s/resume" % hid, token=admin)
        self.assertEqual(st, 200, j)
        self.assertIn("active already", j["message"])
        self.assertEqual(gw.request("DELETE", "/v1/webhooks/%s" % hid, token=op)[0], 403)
        self.assertEqual(gw.request("DELETE", "/v1/webhooks/%s" % hid, token=admin)[0], 200)
        st, _, j = gw.request("DELETE", "/v1/webhooks/%s" % hid, token=admin)
        self.assertEqual((st, j["status"]), (404, "NOT_FOUND"))
        self.assertEqual(gw.request("GET", "/v1/webhooks", token=admin)[2]["body"], {})
        # revoked: 401 at once
        self.c.pmctl("token", "revoke", "erp")
        self.assertEqual(gw.call("intake", "ops.ping", {}, integ)[0], 401)
        tokens = json.loads(self.c.pmctl("--json", "token", "list").stdout)["tokens"]
        self.assertEqual(sorted(t["name"] for t in tokens), ["desk", "finance-1", "root"])
        # the documents anyone may read
        st, _, doc = gw.request("GET", "/v1/openapi.json")
        self.assertEqual(st, 200)
        self.assertIn("/v1/intake/intake.import", doc["paths"])
        self.assertEqual(doc["paths"]["/v1/intake/intake.import"]["post"]["x-pm-roles"], ["operator", "admin"])
        st, _, health = gw.request("GET", "/healthz")
        self.assertEqual((st, health["status"]), (200, "ok"))


class Events(GatewayTest):
    def test_stream_replays_then_follows_and_resumes(self):
        intake, billing = self.fake("intake"), self.fake("billing")
        gw = self.gateway()
        tok = gw.token("erp", "integration")
        emitted = []

        def emit_intake(n):
            ev = intake.emit("intake.unit.registered", unit_id="E01/1-%03d" % n, estate_id="E01",
                             unit=I.Unit(unit_id="E01/1-%03d" % n, estate_id="E01", building="1", area_cm2=9000))
            emitted.append(ev.id)
            return ev.id

        def emit_billing(n):
            ev = billing.emit("billing.invoice.issued", unit_id="E01/1-%03d" % n, estate_id="E01",
                              invoice=B.Invoice(unit_id="E01/1-%03d" % n))
            emitted.append(ev.id)
            return ev.id

        for n in range(1, 6):
            emit_intake(n)
            emit_billing(n)
        poll("the gateway to log intake", self.applied("intake", 5))
        poll("the gateway to log billing", self.applied("billing", 5))
        # everything retained, from the start (from=intake:0: the others from their start too)
        s = Stream(gw, tok, "?from=intake:0")
        self.assertEqual(s.status, 200)
        first = s.take(6)
        ids = [i for i, _ in first]
        self.assertEqual([e["id"] for _, e in first], ids)
        for src in ("intake", "billing"):  # across sources: the order the gateway applied them; per source: seq
            seqs = [int(i.split(":")[1]) for i in ids if i.startswith(src)]
            self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
        # live: an event made now arrives on the open stream after the replay
        rest = s.take(4)
        emit_intake(6)
        live = s.next()
        self.assertEqual(live[0], "intake:6")
        s.close()
        seen = ids + [i for i, _ in rest] + [live[0]]
        self.assertEqual(sorted(seen), sorted(emitted))
        # while away: more events; then resume from the last id seen
        for n in range(7, 10):
            emit_billing(n)
            emit_intake(n)
        poll("the gateway to log intake", self.applied("intake", 9))
        poll("the gateway to log billing", self.applied("billing", 8))
        s = Stream(gw, tok, "", last_id=seen[5])
        got = [i for i, _ in s.take(len(emitted) - 6)]
        s.close()
        self.assertEqual(got[:5], seen[6:])  # what followed seen[5] the first time, in the same order
        self.assertEqual(sorted(got[5:]), sorted(emitted[11:]))  # then what came while away
        self.assertEqual(sorted(seen[:6] + got), sorted(emitted))  # nothing missed, nothing twice
        for src in ("intake", "billing"):  # each source in its own order
            seqs = [int(i.split(":")[1]) for i in got if i.startswith(src)]
            self.assertEqual(seqs, sorted(seqs))

        # the gateway killed and restarted: the log is durable, so is the position
        self.c.kill("gateway")
        self.c.start("gateway")
        gw.refresh()
        s = Stream(gw, tok, "", last_id=got[-3])
        self.assertEqual([i for i, _ in s.take(2)], got[-2:])
        self.assertEqual(emit_billing(10), "billing:9")  # billing's 9th event
        self.assertEqual(s.next()[0], "billing:9")
        s.close()

        # filters, and from= per source (intake holds 9 events, billing 9)
        s = Stream(gw, tok, "?sources=billing&from=billing:6")
        self.assertEqual([i for i, _ in s.take(3)], ["billing:7", "billing:8", "billing:9"])
        s.close()
        s = Stream(gw, tok, "?types=intake.unit.&from=intake:7,billing:99")
        self.assertEqual([i for i, _ in s.take(2)], ["intake:8", "intake:9"])
        s.close()
        s = Stream(gw, tok, "?types=billing.invoice.issued&from=intake:0", last_id="billing:8")
        self.assertEqual(s.next()[0], "billing:9")
        s.close()
        # what a client gets wrong is said
        for q, hdr in (("?from=payroll:3", None), ("?sources=payroll", None), ("?types=Bad Type", None),
                       ("", "intake")):
            s = Stream(gw, tok, q.replace(" ", "%20"), last_id=hdr)
            self.assertEqual(s.status, 400, q)
            s.close()
        s = Stream(gw, tok, "", last_id="intake:999")
        self.assertEqual(s.status, 410)
        s.close()
        self.assertEqual(gw.metric("gateway_sse_events_total"), 3 + 3 + 2 + 1)  # written since the restart


    def test_filtered_stream_reads_past_a_long_run_of_other_events(self):
        intake, billing = self.fake("intake"), self.fake("billing")
        gw = self.gateway()
        tok = gw.token("erp", "integration")
        billing.emit("billing.invoice.issued", unit_id="E01/1-001", invoice=B.Invoice(unit_id="E01/1-001"))
        for n in range(1, 9001):  # more than one fill of the stream reads (4,096 entries)
            intake.emit("intake.unit.updated", unit_id="E01/1-%04d" % n, unit=I.Unit(unit_id="E01/1-%04d" % n))
        billing.emit("billing.invoice.settled", unit_id="E01/1-001", invoice=B.Invoice(unit_id="E01/1-001"))
        poll("the gateway to log intake", self.applied("intake", 9000), deadline_s=120)
        poll("the gateway to log billing", self.applied("billing", 2))
        s = Stream(gw, tok, "?types=billing.&from=billing:0")
        self.assertEqual([i for i, _ in s.take(2)], ["billing:1", "billing:2"])
        s.close()


class Webhooks(GatewayTest):
    env = {"PM_GENERAL_MANUAL_CLOCK": "true", "PM_GATEWAY_WEBHOOK_TIMEOUT_MS": "30000"}

    def gateway(self, *others):
        gw = super().gateway(*others)
        self.admin = gw.token("root", "admin")
        gw.clock(self.admin, "0s")  # the manual clock: from here it moves only when told
        return gw

    def create(self, gw, admin, url, types=None, from_start=True):
        st, _, j = gw.request("POST", "/v1/webhooks", {"url": url, "secret": SECRET, "types": types or [],
                                                        "from_start": from_start}, token=admin)
        self.assertEqual(st, 200, j)
        return j["body"]["webhook"]["id"]

    def emit(self, fake, n0, n):
        for k in range(n0, n0 + n):
            fake.emit("intake.unit.registered", unit_id="E01/1-%03d" % k, estate_id="E01",
                      unit=I.Unit(unit_id="E01/1-%03d" % k, estate_id="E01", area_cm2=9000))

    def test_slow_receiver_never_delays_another(self):
        intake = self.fake("intake")
        gw = self.gateway()
        admin = self.admin
        self.emit(intake, 1, 20)
        poll("the gateway to log intake", self.applied("intake", 20))
        slow, fast = self.receiver("slow", delay=5.0), self.receiver("ok")
        self.create(gw, admin, slow.url)
        self.create(gw, admin, fast.url)
        poll("the fast receiver to get all 20", lambda: fast.count() == 20)
        self.assertLessEqual(slow.count(), 2)  # 5 s each: still on its first or second
        self.assertEqual(fast.ids(), ["intake:%d" % k for k in range(1, 21)])
        self.assertTrue(all(g[2] for g in fast.got), "every signature checks")
        poll("the slow one to get its first", lambda: slow.count() >= 1)
        self.assertEqual(slow.ids()[0], "intake:1")

    def test_failing_receiver_climbs_the_ladder_pauses_and_resumes(self):
        intake = self.fake("intake")
        gw = self.gateway()
        admin = self.admin
        self.emit(intake, 1, 3)
        poll("the gateway to log intake", self.applied("intake", 3))
        rx = self.receiver("fail")
        hid = self.create(gw, admin, rx.url, types=["intake.unit."])
        poll("two attempts (the first retry is at once)", lambda: rx.count() == 2)
        w = poll("the hook to wait", lambda: (lambda w: w if w["state"] == "RETRYING" and w["attempts"] == 2 else None)
                 (gw.hook(admin, hid)))
        self.assertIn("HTTP 500", w["last_error"])
        self.assertIn("maintenance", w["last_error"])
        self.assertEqual(w["pending_event"], "intake:1")
        now = gw.clock(admin, "0s")
        self.assertEqual(w["next_attempt_ms"], now + 60000)
        gw.clock(admin, "59s")
        self.assertEqual(gw.hook(admin, hid)["state"], "RETRYING")  # not due yet
        gw.clock(admin, "2s")
        attempts = 3
        poll("attempt 3", lambda: rx.count() == 3)
        poll("the hook to wait again", lambda: gw.hook(admin, hid).get("attempts") == 3)
        for wait in ("5m", "30m", "2h", "6h", "1d", "1d"):
            self.assertEqual(gw.hook(admin, hid)["state"], "RETRYING")
            gw.clock(admin, wait)
            attempts += 1
            poll("attempt %d" % attempts, lambda: rx.count() == attempts)
            poll("the hook to wait again", lambda: gw.hook(admin, hid).get("attempts") == attempts)
        self.assertEqual(rx.count(), 9)
        # 2 days 8 h 36 min after the first failure: the last try is at 3 days sharp
        w = gw.hook(admin, hid)
        self.assertEqual(w["next_attempt_ms"], w["failing_since_ms"] + 3 * 86400000)
        gw.clock(admin, "1d")
        poll("the last attempt", lambda: rx.count() == 10)
        poll("the hook to pause", lambda: gw.hook(admin, hid)["state"] == "PAUSED")
        self.assertEqual(set(rx.ids()), {"intake:1"})  # never past the failing event
        self.assertTrue(all(g[2] for g in rx.got))
        q = json.loads(self.c.pmctl("--json", "queues", "gateway").stdout)
        paused = [x for x in q["queues"] if x["name"] == "webhooks_paused"][0]
        self.assertEqual(paused["count"], 1)
        self.assertEqual(paused["items"][0]["key"], hid)
        self.assertIn("HTTP 500", paused["items"][0]["reason"])
        self.assertIn("pmctl webhook resume " + hid, paused["items"][0]["reason"])
        # the receiver is fixed; more events came meanwhile; resume continues in order
        gw.clock(admin, "2d")
        self.assertEqual(gw.hook(admin, hid)["state"], "PAUSED")  # paused: no timer moves it
        self.assertEqual(rx.count(), 10)
        rx.mode = "ok"
        self.emit(intake, 4, 2)
        poll("the gateway to log intake", self.applied("intake", 5))
        r = self.c.pmctl("webhook", "resume", hid)
        self.assertIn("delivers again", r.stdout)
        poll("every event delivered", lambda: rx.count() == 15)
        self.assertEqual(rx.ids()[10:], ["intake:%d" % k for k in range(1, 6)])
        poll("the cursor to be kept", lambda: gw.hook(admin, hid).get("cursor_event") == "intake:5")
        q = json.loads(self.c.pmctl("--json", "queues", "gateway").stdout)
        self.assertEqual([x for x in q["queues"] if x["name"] == "webhooks_paused"][0].get("count", 0), 0)

    def test_receiver_sees_a_repeat_when_the_gateway_died_before_its_2xx(self):
        intake = self.fake("intake")
        gw = self.gateway()
        admin = self.admin
        self.emit(intake, 1, 3)
        poll("the gateway to log intake", self.applied("intake", 3))
        rx = self.receiver("hold")
        hid = self.create(gw, admin, rx.url)
        poll("the first delivery to arrive", lambda: rx.count() == 1)
        self.c.kill("gateway")  # SIGKILL while the receiver holds its answer
        rx.released.set()       # its 2xx now goes to a dead connection
        self.c.start("gateway")
        poll("the rest delivered", lambda: rx.count() == 4)
        self.assertEqual(rx.ids(), ["intake:1", "intake:1", "intake:2", "intake:3"])
        self.assertEqual(rx.got[0][3], rx.got[1][3])  # the same event, byte for byte
        self.assertTrue(all(g[2] for g in rx.got), "every signature checks")
        # the receiver answered 2xx to both: its Webhook-Id dedupe keeps three events
        self.assertEqual(len(set(rx.ids())), 3)
        gw.refresh()
        poll("the cursor to be kept", lambda: gw.hook(admin, hid).get("cursor_event") == "intake:3")


class Tls(GatewayTest):
    def test_tls_with_a_certificate_and_no_plain_http_beyond_loopback(self):
        cert, key = os.path.join(self.c.home, "gw.crt"), os.path.join(self.c.home, "gw.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        self.c.env.update({"PM_GATEWAY_TLS_CERT": cert, "PM_GATEWAY_TLS_KEY": key})
        gw = self.gateway()
        self.assertTrue(gw.url.startswith("https://"), gw.url)
        ctx = ssl.create_default_context(cafile=cert)
        conn = http.client.HTTPSConnection("127.0.0.1", gw.port, context=ctx, timeout=10)
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.read())["status"], "ok")
        conn.close()
        # plain HTTP on the TLS port gets no answer
        with self.assertRaises((http.client.HTTPException, ConnectionError, socket.timeout, OSError)):
            plain = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
            plain.request("GET", "/healthz")
            plain.getresponse().read()
        self.c.kill("gateway", signal.SIGTERM)
        # beyond loopback without TLS: refused at start, saying what to set
        env = dict(self.c.env, PM_GATEWAY_LISTEN="0.0.0.0:0", PM_GATEWAY_TLS_CERT="", PM_GATEWAY_TLS_KEY="")
        p = subprocess.run([os.path.join(BUILD, "services/gateway/pm-gateway")], env=env, capture_output=True,
                           text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("tls_cert", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

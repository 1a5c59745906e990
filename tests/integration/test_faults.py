#!/usr/bin/env python3
"""Fault tests: the whole move-in of a batch of units through the six real
daemons while things go wrong, on the manual clock.

- SIGKILL of each daemon in turn at random moments during a batch of
  thousands of units, each restarted at once: the final state equals that of
  a run of the same batch without faults (every daemon's view of every unit,
  compared field by field without the times and generated numbers that
  legitimately differ), no event applied twice (pm_consumer_applied_total =
  the upstream's last seq for every consumer and source), one payment per
  reference, each message written once by notify's file gateway.
- A daemon down for minutes: the others keep working, commands to it fail at
  once (gateway: 503 with Retry-After; pmctl: "did not answer"), and it
  catches up by replay when back.
- A disk that fills (the daemon's file size limit lowered with prlimit, and a
  small tmpfs where mounting is allowed): commands get UNAVAILABLE, nothing
  acknowledged is lost, the daemon recovers by itself once there is room.
- A tiny map (map_size_mb = 1): it grows, nothing is lost.
- The SMS provider down for minutes: messages wait, and go out once each when
  it is back.

The batch is driven by a compact driver (Driver below): per unit a chain of
requests (each sent when the one before it was answered), many units at once
on one DEALER per daemon, every request resent with the same id until it is
answered, so a daemon killed and restarted applies each exactly once."""
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, SOURCE, Cluster, generated_protos, poll  # noqa: E402

generated_protos()
import zmq  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from pm.v1 import envelope_pb2 as E  # noqa: E402

GEN = os.path.join(SOURCE, "tests/support/gen_units.py")
DAEMONS = ["intake", "inspection", "workorder", "billing", "notify", "gateway"]
DOCUMENTS = ["身份证", "购房合同"]
AGREEMENTS = ["前期物业服务协议", "业主临时公约", "消防安全责任书", "装修协议", "委托银行代收款协议书"]
PLAN_DAY = "2026-12-02"
BEFORE = "2026-12-01T02:00:00Z"    # 10:00 in Shanghai, the day before the move-in day
MOVE_IN = "2026-12-02T00:00:00Z"   # 08:00 on the move-in day, when the counters open
UNITS = int(os.environ.get("PM_FAULT_UNITS", "2000"))


def env_for(cluster):
    cluster.env.update({
        "PM_GENERAL_MANUAL_CLOCK": "true",
        "PM_BILLING_SCHEDULE": os.path.join(SOURCE, "deploy/billing/schedules.conf"),
        "PM_NOTIFY_SMS_RATE": "0",
        "PM_NOTIFY_EMAIL_RATE": "0",
        "PM_NOTIFY_SMS_DAILY_CAP": "0",
        "PM_NOTIFY_QUIET_HOURS": "none",
        "PM_GATEWAY_LISTEN": "127.0.0.1:0",
    })


def make_csv(units, seed=7):
    fd, path = tempfile.mkstemp(suffix=".csv", prefix="units.", dir="/tmp")
    os.close(fd)
    subprocess.run([sys.executable, GEN, path, "--units", str(units), "--seed", str(seed)], check=True)
    return path


def read_units(path):
    """unit id -> (first owner's name, ID number), in file order."""
    import csv
    units = collections.OrderedDict()
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            uid = "%s/%s/%s" % (row["estate_id"], row["building"], row["unit"])
            if uid not in units:
                units[uid] = (row["owner_name"], row["id_number"])
    return units


class Failed(AssertionError):
    pass


# --- the driver ---------------------------------------------------------------------------


class Driver:
    """Requests to the daemons of a cluster, many in flight on one DEALER per
    daemon. A request is resent (same id, same bytes) every resend_s until it
    is answered: a daemon that was killed lost what it had not committed, and
    answers an id it committed with its stored first reply. UNAVAILABLE (not
    stored: nothing was applied) is retried the same way."""

    def __init__(self, cluster, tag="r", resend_s=1.5):
        self.c = cluster
        self.ctx = zmq.Context.instance()
        self.socks = {}
        self.poller = zmq.Poller()
        self.tag = tag
        self.n = 0
        self.resend_s = resend_s
        self.pending = {}    # id -> [daemon, bytes, sent_at, callback, method]
        self.unavailable = 0
        self.unavailable_said = ""
        self.resent = 0
        self.work = 0        # requests sent by chains (run)
        self.live = list(DAEMONS)  # the daemons settle and clock wait for (one may be down on purpose)
        for d in DAEMONS:
            s = self.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SNDHWM, 0)
            s.setsockopt(zmq.RCVHWM, 0)
            s.connect(cluster.endpoint(d))
            self.socks[d] = s
            self.poller.register(s, zmq.POLLIN)

    def close(self):
        for s in self.socks.values():
            s.close()

    def request(self, method, body=None, actor="fault-test"):
        self.n += 1
        req = E.Request(id="%s-%08d" % (self.tag, self.n), method=method, actor=actor)
        field = method.replace(".", "_")
        json_format.ParseDict(body or {}, getattr(req, field))
        getattr(req, field).SetInParent()
        return req

    def send(self, daemon, req, cb):
        data = req.SerializeToString()
        self.pending[req.id] = [daemon, data, time.monotonic(), cb, req.method]
        self.socks[daemon].send_multipart([b"", data])

    def pump(self, timeout_ms=50):
        for s, _ in self.poller.poll(timeout_ms):
            while True:
                try:
                    frames = s.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                rep = E.Reply()
                rep.ParseFromString(frames[-1])
                p = self.pending.get(rep.id)
                if not p:
                    continue  # the answer to a resend of a request answered already
                if rep.status == E.UNAVAILABLE:
                    self.unavailable += 1
                    self.unavailable_said = self.unavailable_said or rep.message
                    p[2] = time.monotonic() - self.resend_s + 0.2  # again in 0.2 s
                    continue
                del self.pending[rep.id]
                p[3](rep)
        now = time.monotonic()
        for rid, p in self.pending.items():
            if now - p[2] >= self.resend_s:
                self.resent += 1
                p[2] = now
                self.socks[p[0]].send_multipart([b"", p[1]])

    def call(self, daemon, method, body=None, deadline_s=120):
        out = []
        self.send(daemon, self.request(method, body), out.append)
        end = time.monotonic() + deadline_s
        while not out:
            if time.monotonic() > end:
                raise Failed("no answer from %s to %s" % (daemon, method))
            self.pump()
        return out[0]

    def run(self, chains, inflight=256, deadline_s=300, on_pump=None):
        """Runs generator chains: each yields (daemon, method, body) and is
        sent the reply; at most one request of a chain is in flight, at most
        `inflight` chains at once."""
        chains = iter(chains)
        active = 0
        end = time.monotonic() + deadline_s

        def step(gen, rep):
            nonlocal active
            try:
                d, m, b = gen.send(rep)
            except StopIteration:
                active -= 1
                start_next()
                return
            self.work += 1
            self.send(d, self.request(m, b), lambda r, g=gen: step(g, r))

        def start_next():
            nonlocal active
            for gen in chains:
                active += 1
                step(gen, None)
                return

        for _ in range(inflight):
            start_next()
        while active:
            if time.monotonic() > end:
                raise Failed("the batch did not finish in %d s (%d chains active)" % (deadline_s, active))
            self.pump()
            if on_pump:
                on_pump()

    # --- the state of the cluster ---------------------------------------------------------

    def metrics(self, daemon):
        rep = self.call(daemon, "ops.metrics")
        out = {}
        for m in rep.ops_metrics.metrics:
            out[(m.name, m.labels)] = m.value
        return out

    def settle(self, deadline_s=180, quiet_s=0.25):
        """Waits until every consumer applied every event of every upstream
        and notify has nothing at a gateway, unchanged for quiet_s (messages
        due later, such as tomorrow's reminders, wait in notify's backlog: a
        message due now would be claimed within milliseconds)."""
        end = time.monotonic() + deadline_s
        last, since = None, 0
        while True:
            ms = {d: self.metrics(d) for d in self.live}
            seqs = {d: ms[d].get(("pm_outbox_last_seq", ""), 0) for d in self.live}
            state = []
            ok = True
            for d in self.live:
                for (name, labels), v in sorted(ms[d].items()):
                    if name == "pm_consumer_applied_seq":
                        src = labels.split('"')[1]
                        if src not in seqs:
                            continue
                        state.append((d, src, v))
                        ok &= v == seqs[src]
            n = ms.get("notify", {})
            busy = n.get(("notify_messages", 'state="SENDING"'), 0) + sum(
                v for (name, _), v in n.items() if name == "notify_in_flight")
            ok &= busy == 0
            state.append(tuple(sorted(seqs.items())))
            state.append(tuple(sorted((k, v) for k, v in n.items() if k[0] in ("notify_backlog", "notify_messages"))))
            now = time.monotonic()
            if not ok or state != last:
                last, since = (state if ok else None), now
            elif now - since >= quiet_s:
                return ms
            if now > end:
                raise Failed("the daemons did not settle: %s" % state)
            time.sleep(0.05)

    def advance(self, by):
        for d in self.live:
            expect(self.call(d, "ops.clock", {"advance_by": by}), what=d + " ops.clock")

    def clock(self, to):
        for d in self.live:
            rep = self.call(d, "ops.clock", {"set_to": to})
            if rep.status != E.OK:
                raise Failed("%s ops.clock: %s" % (d, rep.message))


def expect(rep, *ok, what=""):
    ok = ok or (E.OK,)
    if rep.status not in ok:
        raise Failed("%s %s: %s %s" % (what, rep.id, E.Status.Name(rep.status), rep.message))
    return rep


def body_dict(rep, method):
    return json_format.MessageToDict(getattr(rep, method.replace(".", "_")), preserving_proto_field_name=True)


# --- the move-in ----------------------------------------------------------------------------


class MoveIn:
    """One deterministic move-in of the units of a CSV file: import, notices,
    the plan, check-ins, an inspection round per unit (a defect on every fifth),
    the defects' work orders done, the re-inspections, payments (every tenth
    sent twice under the same reference), keys."""

    def __init__(self, cluster, path, log=print):
        self.c = cluster
        self.path = path
        self.units = read_units(path)
        self.drv = Driver(cluster)
        self.log = log
        self.defective = [u for i, u in enumerate(self.units) if i % 5 == 2]
        self.is_defective = set(self.defective)
        self.phase = ""
        self.before_last_settle = None

    def close(self):
        self.drv.close()

    def estates(self):
        return sorted({u.split("/")[0] for u in self.units})

    def step(self, name):
        self.phase = name
        self.log("  %s" % name)

    STEPS = ["clock", "import", "notices and plan", "move-in day", "check-ins", "inspections", "work orders",
             "re-inspections", "payments", "keys"]

    def run(self, first="clock", last="keys"):
        """Runs the steps from first to last, each followed by a settle."""
        ms = None
        for name in self.STEPS[self.STEPS.index(first):self.STEPS.index(last) + 1]:
            self.step(name)
            getattr(self, "do_" + re.sub(r"[ -]", "_", name))()
            if name == self.STEPS[-1] and self.before_last_settle:
                self.before_last_settle()
            ms = self.drv.settle()
        return ms

    def do_clock(self):
        self.drv.clock(BEFORE)

    def do_import(self):
        r = self.c.pmctl("import", self.path, "--chunk", "200", "--inflight", "4", check=False, timeout=300)
        if r.returncode != 0:
            raise Failed("import: %s%s" % (r.stdout, r.stderr))

    def do_notices_and_plan(self):
        d = self.drv
        for e in self.estates():
            expect(d.call("intake", "intake.notice.send", {
                "estate_id": e, "notice_id": "N-%s-1" % e, "window": "12月2日 08:00-20:00", "place": "物业服务中心",
                "fees_note": "物业费一年、维修基金"}), what="notice")
            expect(d.call("intake", "intake.schedule.plan", {
                "estate_id": e, "days": [{"date": PLAN_DAY}], "opens": "08:00", "closes": "20:00", "slot_minutes": 60,
                "counters": 10, "per_counter": 25, "place": "物业服务中心"}), what="plan")

    def do_move_in_day(self):
        self.drv.clock(MOVE_IN)

    def do_check_ins(self):
        self.drv.run(self.checkin(u) for u in self.units)

    def do_inspections(self):
        self.drv.run(self.inspect(u) for u in self.units)

    def do_work_orders(self):
        self.drv.run(self.rectify(u) for u in self.defective)

    def do_re_inspections(self):
        self.drv.run(self.reinspect(u) for u in self.defective)

    def do_payments(self):
        self.drv.run(self.pay(i, u) for i, u in enumerate(self.units))

    def do_keys(self):
        self.drv.run(self.keys(u) for u in self.units)

    def checkin(self, u):
        rep = yield ("intake", "intake.checkin", {"unit_id": u, "owner_index": 0, "id_number": self.units[u][1],
                                                  "documents": DOCUMENTS, "agreements": AGREEMENTS})
        expect(rep, what="check-in " + u)

    def inspect(self, u):
        expect((yield ("inspection", "inspection.round.start", {"unit_id": u, "inspector": "验房员甲"})),
               what="round 1 " + u)
        if u in self.is_defective:
            expect((yield ("inspection", "inspection.defect.record", {
                "unit_id": u, "room": "厨房", "category": "给排水", "severity": "MINOR",
                "description": "水槽下方渗水", "location": "水槽柜内"})), what="defect " + u)
        expect((yield ("inspection", "inspection.items.record", {"unit_id": u, "remaining_ok": True})),
               what="items " + u)
        rep = expect((yield ("inspection", "inspection.round.complete", {"unit_id": u})), what="complete " + u)
        passed = body_dict(rep, "inspection.round.complete")["round"].get("passed", False)
        if passed != (u not in self.is_defective):
            raise Failed("round 1 of %s: passed is %s" % (u, passed))

    def rectify(self, u):
        rep = expect((yield ("workorder", "workorder.unit.get", {"unit_id": u})), what="orders " + u)
        orders = body_dict(rep, "workorder.unit.get").get("orders", [])
        if len(orders) != 1:
            raise Failed("%s has %d work orders, expected 1: %s" % (u, len(orders), orders))
        oid = orders[0]["order_id"]
        if orders[0].get("state") == "ORDER_OPEN":  # E02 dispatches by claim (抢单): its plumber takes it
            expect((yield ("workorder", "workorder.claim", {"order_id": oid, "technician": "T12"})),
                   what="claim " + oid)
        expect((yield ("workorder", "workorder.start", {"order_id": oid})), what="start " + oid)
        expect((yield ("workorder", "workorder.done", {"order_id": oid, "note": "更换水槽下水管"})), what="done " + oid)

    def reinspect(self, u):
        rep = expect((yield ("inspection", "inspection.round.start", {"unit_id": u, "inspector": "验房员乙"})),
                     what="round 2 " + u)
        to_verify = body_dict(rep, "inspection.round.start").get("to_verify", [])
        if len(to_verify) != 1:
            raise Failed("round 2 of %s verifies %s" % (u, to_verify))
        for did in to_verify:
            expect((yield ("inspection", "inspection.defect.verify", {"defect_id": did, "by": "验房员乙"})),
                   what="verify " + did)
        rep = expect((yield ("inspection", "inspection.round.complete", {"unit_id": u})), what="complete 2 " + u)
        if not body_dict(rep, "inspection.round.complete")["round"].get("passed"):
            raise Failed("round 2 of %s did not pass" % u)

    def pay(self, i, u):
        rep = expect((yield ("billing", "billing.unit.get", {"unit_id": u})), what="billing unit " + u)
        b = body_dict(rep, "billing.unit.get")
        inv, open_fen = b.get("move_in_invoice", ""), int(b.get("open_fen", 0))
        if not inv or open_fen <= 0:
            raise Failed("%s has no open move-in invoice: %s" % (u, b))
        pay = {"invoice_id": inv, "amount_fen": open_fen, "channel": "counter_card", "external_ref": "POS-" + u,
               "payer": self.units[u][0]}
        rep = expect((yield ("billing", "billing.payment.record", pay)), what="payment " + u)
        if i % 10 == 4:  # the cashier presses again: same reference, another request
            rep = expect((yield ("billing", "billing.payment.record", pay)), what="payment again " + u)
            if not body_dict(rep, "billing.payment.record").get("already_recorded"):
                raise Failed("a second payment under POS-%s was recorded" % u)

    def keys(self, u):
        expect((yield ("intake", "intake.keys.handover", {"unit_id": u, "key_set": "A", "keys": 2,
                                                          "received_by": self.units[u][0]})), what="keys " + u)


# --- what a user sees, canonical ------------------------------------------------------------

UNIT_READS = [("intake", "intake.unit.get"), ("billing", "billing.unit.get"), ("inspection", "inspection.unit.get"),
              ("workorder", "workorder.unit.get"), ("notify", "notify.unit.get"), ("gateway", "gateway.unit.get")]
# Numbers a daemon draws in the order things reach it (invoices, payments,
# receipts, orders, messages, event seqs and log positions): two runs of one
# batch draw them in another order when a crash makes requests arrive again.
NUMBERED = [
    (re.compile(r"\b(INV|PAY|RCP|RFD|WO)-(E\d+)-\d{6}\b", re.A), r"\1-\2-#"),
    (re.compile(r"\bM\d{10}\b", re.A), "M#"),
    (re.compile(r"\b(intake|inspection|workorder|billing|notify|gateway):\d+\b", re.A), r"\1:#"),
    (re.compile(r"\bT\d{2}\b", re.A), "T#"),  # a technician: auto-dispatch picks by load, so by arrival order
]
# Fields that follow from that order rather than from the batch: the
# technician auto-dispatch picks (fewest orders, then longest idle), the
# gateway's log position; the owners' keyed hashes (each cluster draws its
# own key); a message's dedupe key (its source event's id, template, channel
# and the recipient's hash: the event id is numbered, the rest is kept).
DROPPED = {"pos", "technician", "team_lead", "recipient_name", "message_id", "from_event", "owner_key", "dedupe_key"}


def canonical(v):
    if isinstance(v, dict):
        return {k: canonical(x) for k, x in sorted(v.items()) if k not in DROPPED}
    if isinstance(v, (list, tuple)):
        return type(v)(canonical(x) for x in v)
    if isinstance(v, str):
        for rx, rep in NUMBERED:
            v = rx.sub(rep, v)
        return v
    return v


def differences(a, b, path=""):
    """Where two canonical views differ, as paths with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += differences(a.get(k), b.get(k), path + "." + k)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += differences(x, y, "%s[%d]" % (path, i))
        return out
    return [] if a == b else ["%s: %s != %s" % (path, json.dumps(a, ensure_ascii=False)[:200],
                                                   json.dumps(b, ensure_ascii=False)[:200])]


def sort_by_json(items):
    return sorted(items, key=lambda x: json.dumps(x, sort_keys=True, ensure_ascii=False))


def unit_view(daemon, body):
    """A daemon's answer about a unit, without what legitimately differs."""
    body = canonical(body)
    if daemon == "inspection":  # the round open when a work order moved a defect: cross-source arrival order
        for d in body.get("defects", []):
            for h in d.get("history", []):
                h.pop("round_no", None)
    if daemon == "notify":
        for m in body.get("messages", []):  # a message at the gateway when notify died counts one attempt more
            m.pop("attempts", None)
    if daemon == "notify":  # newest first by message number: the order of creation across sources
        body["messages"] = sorted(body.get("messages", []), key=lambda m: (
            m.get("source_event_type", ""), m.get("template", ""), m.get("channel", ""), m.get("recipient", ""),
            json.dumps(m, sort_keys=True, ensure_ascii=False)))
    if daemon == "gateway":  # the log's order across sources is the order the gateway heard them
        body["events"] = sort_by_json(body.get("events", []))
    return body


def dump_units(drv, units):
    out = {}

    def reads(u):
        view = {}
        for d, m in UNIT_READS:
            rep = expect((yield (d, m, {"unit_id": u})), what="%s of %s" % (m, u))
            view[d] = unit_view(d, body_dict(rep, m))
        out[u] = view

    drv.run((reads(u) for u in units), inflight=128)
    return out


def replay_all(drv, daemon):
    """Every event the daemon committed, from seq 1."""
    events, seq = [], 1
    while True:
        rep = expect(drv.call(daemon, "events.replay", {"from_seq": seq, "max": 1000}), what="replay " + daemon)
        got = list(rep.events_replay.events)
        events += got
        if not got or seq + len(got) > rep.events_replay.last_seq:
            return events
        seq += len(got)


def event_facts(drv):
    """Per daemon, how many events of each type about each unit it published."""
    out = {}
    for d in DAEMONS[:-1]:
        evs = replay_all(drv, d)
        seqs = [e.seq for e in evs]
        if seqs != list(range(1, len(evs) + 1)):
            raise Failed("%s's outbox has gaps or repeats" % d)
        out[d] = collections.Counter((e.type, e.unit_id) for e in evs)
    return out


def outbox_lines(cluster):
    """notify's file gateway output: channel -> list of JSON lines."""
    out = {}
    for ch in ("sms", "email"):
        path = os.path.join(cluster.home, "notify", "outbox", ch + ".jsonl")
        with open(path, encoding="utf-8") as f:
            out[ch] = [json.loads(line) for line in f if line.strip()]
    return out


def consumers_exact(ms):
    """(consumer, source, applied_total, upstream last seq) for each pair."""
    rows = []
    for d in ms:
        for (name, labels), v in ms[d].items():
            if name == "pm_consumer_applied_total" and labels.split('"')[1] in ms:
                src = labels.split('"')[1]
                rows.append((d, src, int(v), int(ms[src][("pm_outbox_last_seq", "")])))
    return rows


class Killer(threading.Thread):
    """Kills each daemon in turn with SIGKILL at random moments of a move-in,
    restarting it at once: one during the import, then `rounds` rounds at
    random points of the batch's requests (a fraction of the `work` requests
    a run without faults sends), so kills land where the daemons are busy."""

    def __init__(self, cluster, movein, work, seed, rounds=2):
        super().__init__(daemon=True)
        self.c = cluster
        self.m = movein
        rng = random.Random(seed)
        self.plan = [(rng.choice(DAEMONS), "import", rng.uniform(0.05, 0.3))]
        for r in range(rounds):
            order = DAEMONS[:]
            rng.shuffle(order)
            at = sorted(rng.uniform(r / rounds, (r + 1) / rounds) * 0.97 * work for _ in order)
            self.plan += [(d, "work", int(a)) for d, a in zip(order, at)]
        self.done = []       # (daemon, seconds into the run, what the driver was doing)
        self.error = None
        self.stop = threading.Event()
        self.hurry = False   # the batch is ending: the kills still planned happen now

    def finish(self):
        """Called as the batch's last requests are answered: the kills still
        planned happen at once (they are still during the batch)."""
        self.hurry = True
        self.join(120)

    def run(self):
        t0 = time.monotonic()
        try:
            for d, trigger, arg in self.plan:
                while not self.stop.is_set():
                    if trigger == "import" and self.m.phase == "import":
                        self.stop.wait(arg)
                        break
                    if trigger == "work" and (self.hurry or self.m.drv.work >= arg):
                        break
                    self.stop.wait(0.005)
                if self.stop.is_set():
                    return
                self.c.kill(d, signal.SIGKILL)
                self.done.append((d, round(time.monotonic() - t0, 1), self.m.phase))
                self.c.start(d)
        except Exception as e:  # reported by the test
            self.error = e


def http_call(cluster, token, daemon, method, body):
    """POST /v1/DAEMON/METHOD on the cluster's gateway: (status, headers, JSON)."""
    st = json.loads(cluster.pmctl("--json", "call", "gateway", "gateway.status").stdout)["gateway_status"]
    req = urllib.request.Request("http://127.0.0.1:%d/v1/%s/%s" % (st["port"], daemon, method),
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read())


def can_mount_tmpfs():
    """Whether this machine lets a process mount a tmpfs in a mount namespace
    of its own (unshare -rm: an unprivileged user namespace, or root)."""
    d = tempfile.mkdtemp(prefix="pmtmpfs.", dir="/tmp")
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$0"', d],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        os.rmdir(d)


def start_on_tmpfs(cluster, name, size_kb):
    """Starts daemon `name` with its data directory on a tmpfs of size_kb in a
    mount namespace of its own (the pid is the daemon's: sh and unshare exec).
    The tmpfs is seen from outside at /proc/PID/root/DATA."""
    data = os.path.join(cluster.home, name)
    os.makedirs(data, exist_ok=True)
    log = open(os.path.join(cluster.home, name + ".log"), "ab")
    cluster.logs[name] = log
    cluster.procs[name] = subprocess.Popen(
        ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=%dk tmpfs "$0" && exec "$1"' % size_kb, data,
         os.path.join(BUILD, "services", name, "pm-" + name)], env=cluster.env, stdout=log, stderr=log)
    poll(name + " to answer", lambda: cluster.pmctl("ping", name, check=False).returncode == 0)
    return "/proc/%d/root%s" % (cluster.procs[name].pid, data)


class SmsProvider:
    """An SMS provider on a loopback port that can go away (connection
    refused) and come back on the same port. It honours Idempotency-Key: a
    key taken before is answered with its first id and not delivered again."""

    def __init__(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.url = "http://127.0.0.1:%d/sms" % self.port
        self.lock = threading.Lock()
        self.delivered = {}   # key -> (id, to, text)
        self.repeats = 0      # requests for a key delivered already
        self.server = None

    def up(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key", "")
                with provider.lock:
                    if key in provider.delivered:
                        provider.repeats += 1
                    else:
                        provider.delivered[key] = ("P%06d" % (len(provider.delivered) + 1), body["to"], body["text"])
                    data = json.dumps({"id": provider.delivered[key][0]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def count(self):
        with self.lock:
            return len(self.delivered)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Run:
    """One move-in of a batch in a cluster of its own; what it ended with."""

    def __init__(self, path, name, kill_work=None, seed=13):
        self.c = Cluster()
        env_for(self.c)
        self.name = name
        self.kills = []
        try:
            self.c.start(*DAEMONS)
            m = MoveIn(self.c, path, log=lambda s: log(name + ":" + s))
            killer = Killer(self.c, m, kill_work, seed) if kill_work else None
            if killer:
                m.before_last_settle = killer.finish
            t0 = time.monotonic()
            if killer:
                killer.start()
            try:
                m.run()
            finally:
                if killer:
                    killer.stop.set()
                    killer.join(60)
            self.took = time.monotonic() - t0
            self.work = m.drv.work
            if killer:
                if killer.error:
                    raise killer.error
                self.kills = killer.done
            self.metrics = m.drv.settle()
            self.units = dump_units(m.drv, m.units)
            self.events = event_facts(m.drv)
            self.outbox = outbox_lines(self.c)
            self.resent, self.unavailable = m.drv.resent, m.drv.unavailable
            m.close()
        except Exception:
            for d in DAEMONS:
                p = os.path.join(self.c.home, d + ".log")
                if os.path.exists(p):
                    with open(p, errors="replace") as f:
                        log("--- %s %s.log (last lines) ---\n%s" % (name, d, "".join(f.readlines()[-15:])))
            self.close()
            raise

    def close(self):
        self.c.close()


class Faults(unittest.TestCase):
    def setUp(self):
        self.files = []
        self.runs = []
        self.clusters = []

    def tearDown(self):
        for r in self.runs:
            r.close()
        for c in self.clusters:
            c.close()
        for f in self.files:
            os.unlink(f)

    def csv(self, units, seed=7):
        p = make_csv(units, seed)
        self.files.append(p)
        return p

    def test_sigkill_of_each_daemon_mid_batch_ends_as_a_run_without_faults(self):
        path = self.csv(UNITS)
        clean = Run(path, "clean")
        self.runs.append(clean)
        log("clean run: %d units in %.1f s" % (len(clean.units), clean.took))
        seed = int(os.environ.get("PM_FAULT_SEED", "13"))
        faulty = Run(path, "faulty", kill_work=clean.work, seed=seed)
        self.runs.append(faulty)
        log("faulty run (PM_FAULT_SEED=%d): %.1f s, kills %s, %d requests resent, %d answered UNAVAILABLE"
            % (seed, faulty.took, faulty.kills, faulty.resent, faulty.unavailable))
        self.assertEqual(len(faulty.kills), 1 + 2 * len(DAEMONS), "every kill happened during the batch")
        self.assertEqual(set(k[0] for k in faulty.kills), set(DAEMONS))
        for run in (clean, faulty):
            # no event applied twice, none missed: each consumer's durable count of
            # applied events equals the upstream's last seq
            for consumer, source, applied, last in consumers_exact(run.metrics):
                self.assertEqual(applied, last, "%s run: %s applied %d of %s's %d events"
                                 % (run.name, consumer, applied, source, last))
            # every unit got its keys, paid once
            for u, view in run.units.items():
                self.assertEqual(view["intake"]["state"], "KEYS_HANDED", u)
                self.assertEqual(len(view["billing"]["payments"]), 1, u)
            # each message written once by the file gateway
            for ch, lines in run.outbox.items():
                keys = collections.Counter(m["idempotency_key"] for m in lines)
                twice = [k for k, n in keys.items() if n > 1]
                self.assertEqual(twice, [], "%s run: %s messages written more than once" % (run.name, ch))
        # the faulty run ends exactly as the clean one: every daemon's view of every unit
        self.assertEqual(clean.units.keys(), faulty.units.keys())
        diffs = []
        for u in clean.units:
            for d, _ in UNIT_READS:
                diffs += ["%s %s%s" % (u, d, x) for x in differences(faulty.units[u][d], clean.units[u][d])]
        self.maxDiff = None
        kinds = collections.Counter(re.sub(r"\[\d+\]", "[]", x.split(" ", 1)[1].split(":")[0]) for x in diffs)
        if diffs:
            log("differences by kind: %s" % kinds.most_common())
        self.assertEqual(diffs[:20], [], "%d differences (faulty != clean)" % len(diffs))
        # the same events about the same units, each as often
        for d in clean.events:
            self.assertEqual(faulty.events[d], clean.events[d], "%s's events" % d)

        # the same messages written by notify's file gateway
        def messages(run):
            return collections.Counter(canonical((m["channel"], m["template"], m["unit_id"], m["to"], m["text"]))
                                       for lines in run.outbox.values() for m in lines)
        a, b = messages(faulty), messages(clean)
        self.assertEqual((list((a - b).items())[:5], list((b - a).items())[:5]), ([], []),
                         "messages only in the faulty run, only in the clean run")

    def cluster(self):
        c = Cluster()
        env_for(c)
        self.clusters.append(c)
        return c

    def test_a_daemon_down_for_minutes(self):
        """billing is down for minutes of the move-in day: intake, inspection,
        workorder and notify go on; calls to billing fail at once, through the
        gateway (503, Retry-After) and pmctl ("did not answer"); back, billing
        replays what it missed and the move-in completes."""
        c = self.cluster()
        c.env["PM_GATEWAY_CALL_TIMEOUT_MS"] = "60000"  # only a daemon known to be down is answered before this
        c.start(*DAEMONS)
        path = self.csv(300, seed=21)
        m = MoveIn(c, path, log=lambda s: log("down:" + s))
        m.run(last="move-in day")
        token = json.loads(c.pmctl("--json", "token", "create", "cashier", "--role", "admin").stdout)["token"]
        c.kill("billing", signal.SIGKILL)
        m.drv.live.remove("billing")
        unit = next(iter(m.units))
        # calls to billing fail fast and say why; the rest of the gateway works
        for method, body in (("billing.unit.get", {"unit_id": unit}),
                             ("billing.payment.record", {"unit_id": unit, "amount": "100.00", "channel": "online",
                                                         "external_ref": "WX-1"})):
            st, headers, j = http_call(c, token, "billing", method, body)
            self.assertEqual((st, j["status"]), (503, "UNAVAILABLE"), j)
            self.assertEqual(headers["Retry-After"], "5")
            self.assertIn("billing is not running or cannot be reached", j["message"])
        st, _, j = http_call(c, token, "intake", "intake.unit.get", {"unit_id": unit})
        self.assertEqual((st, j["body"]["state"]), (200, "SCHEDULED"))
        r = c.pmctl("--timeout", "1000", "call", "billing", "billing.unit.get", json.dumps({"unit_id": unit}),
                    check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("billing did not answer", r.stderr)
        self.assertIn("is it running?", r.stderr)
        # the move-in goes on without billing for a quarter of an hour
        m.run(first="check-ins", last="inspections")
        m.drv.advance("15m")
        m.drv.settle()
        st, _, j = http_call(c, token, "billing", "billing.unit.get", {"unit_id": unit})
        self.assertEqual(st, 503, j)
        view = expect(m.drv.call("intake", "intake.unit.get", {"unit_id": unit}))
        self.assertEqual(view.intake_unit_get.state, "CHECKED_IN")
        self.assertEqual(c.metric("billing", "billing_invoices"), None)  # pmctl: no answer
        # billing is back: it replays the check-ins it missed and issues their invoices
        c.start("billing")
        m.drv.live = list(DAEMONS)
        now = expect(m.drv.call("intake", "ops.clock", {})).ops_clock.now
        expect(m.drv.call("billing", "ops.clock", {"set_to": now}))  # it kept the time it died at
        ms = m.drv.settle()
        self.assertEqual(ms["billing"][("billing_invoices", "")], len(m.units))
        for consumer, source, applied, last in consumers_exact(ms):
            self.assertEqual(applied, last, "%s applied %d of %s's %d events" % (consumer, applied, source, last))
        st, _, j = http_call(c, token, "billing", "billing.unit.get", {"unit_id": unit})
        self.assertEqual((st, j["body"]["invoices"][0]["state"]), (200, "ISSUED"))
        # and the move-in completes
        m.run(first="work orders")
        for u in m.units:
            view = expect(m.drv.call("intake", "intake.unit.get", {"unit_id": u}))
            self.assertEqual(view.intake_unit_get.state, "KEYS_HANDED", u)
        m.close()

    def test_a_tiny_map_grows(self):
        """Every daemon starts with a 1 MiB LMDB map: each grows it as the
        move-in of 1,000 units fills it (MDB_MAP_FULL is met in the middle of
        group commits of commands, events and timers), and nothing is lost."""
        c = self.cluster()
        for d in DAEMONS:
            c.env["PM_%s_MAP_SIZE_MB" % d.upper()] = "1"
        c.start(*DAEMONS)
        m = MoveIn(c, self.csv(1000, seed=44), log=lambda s: log("map:" + s))
        ms = m.run()
        log("map sizes: %s" % [(d, ms[d][("pm_map_grow_total", "")], ms[d][("pm_map_size_bytes", "")],
                                ms[d][("pm_map_used_bytes", "")]) for d in DAEMONS])
        for d in DAEMONS:
            self.assertGreater(ms[d][("pm_map_grow_total", "")], 0, "%s's map never grew" % d)
            self.assertGreater(ms[d][("pm_map_size_bytes", "")], 1 << 20, d)
        for consumer, source, applied, last in consumers_exact(ms):
            self.assertEqual(applied, last, "%s applied %d of %s's %d events" % (consumer, applied, source, last))
        views = dump_units(m.drv, m.units)
        for u, v in views.items():
            self.assertEqual(v["intake"]["state"], "KEYS_HANDED", u)
            self.assertEqual(v["inspection"]["status"], "INSPECTION_PASSED", u)
            self.assertEqual([i["state"] for i in v["billing"]["invoices"]], ["SETTLED"], u)
        for ch, lines in outbox_lines(c).items():
            keys = collections.Counter(x["idempotency_key"] for x in lines)
            self.assertEqual([k for k, n in keys.items() if n > 1], [], ch)
        m.close()

    def test_the_sms_provider_down_for_minutes(self):
        """The SMS provider refuses connections while the move-in notices go
        out: the SMS wait (RETRYING, backing off on the manual clock, none
        given up) while the emails go; when it is back, each SMS goes once."""
        sms = SmsProvider()
        self.addCleanup(sms.down)
        c = self.cluster()
        c.env.update({"PM_NOTIFY_SMS_GATEWAY": "http-sms", "PM_NOTIFY_SMS_URL": sms.url})
        c.start("intake", "notify")
        m = MoveIn(c, self.csv(200, seed=55), log=lambda s: log("sms:" + s))
        m.drv.live = ["intake", "notify"]
        m.run(last="notices and plan")  # the provider is down from the start

        def queues():
            r = json.loads(c.pmctl("--json", "queues", "notify", "--limit", "1000").stdout)
            return {q["name"]: q for q in r.get("queues", [])}

        def metric(name, labels=""):
            return m.drv.metrics("notify").get((name, labels), 0)

        waiting = poll("the notices' SMS to fail once each", lambda: (
            metric("notify_retries_total") >= metric("notify_messages", 'state="RETRYING"') > 0
            and metric("notify_backlog", 'channel="sms"') == metric("notify_messages", 'state="RETRYING"')
            and metric("notify_messages", 'state="SENDING"') == 0 and metric("notify_backlog", 'channel="sms"')))
        self.assertEqual(metric("notify_sent_total", 'channel="sms"'), 0)
        self.assertGreater(metric("notify_sent_total", 'channel="email"'), 0)  # email does not wait for SMS
        backlog = queues()["backlog"]
        self.assertIn("cannot be reached", json.dumps(backlog, ensure_ascii=False))
        # minutes pass: every retry is refused again, none is given up
        for step in ("1m", "2m", "4m", "8m"):
            before = metric("notify_retries_total")
            m.drv.advance(step)
            poll("the retries due after %s" % step, lambda: metric("notify_retries_total") > before
                 and metric("notify_messages", 'state="SENDING"') == 0)
        self.assertEqual(metric("notify_dead_letters"), 0)
        self.assertEqual(metric("notify_messages", 'state="RETRYING"'), waiting)
        self.assertEqual(sms.count(), 0)
        log("sms: %d SMS waited 15 minutes, %d attempts refused" % (waiting, metric("notify_retries_total")))
        # the provider is back: the next retries go, each SMS once
        sms.up()
        m.drv.advance("1h")
        poll("every SMS at the provider", lambda: sms.count() == waiting)
        ms = m.drv.settle()
        self.assertEqual(ms["notify"][("notify_sent_total", 'channel="sms"')], waiting)
        self.assertEqual(ms["notify"][("notify_backlog", 'channel="sms"')], 0)
        self.assertEqual(ms["notify"][("notify_dead_letters", "")], 0)
        self.assertEqual(sms.repeats, 0)
        self.assertEqual(len({(v[1], v[2]) for v in sms.delivered.values()}), waiting, "each text to each phone once")
        # and notify told the others once per message (intake marks units NOTIFIED from it)
        sent = [e for e in replay_all(m.drv, "notify") if e.type == "notify.message.sent"]
        self.assertEqual(len(sent), len({e.message.message_id for e in sent}))
        self.assertEqual(sum(1 for e in sent if e.message.channel == "sms"), waiting)
        m.close()

    def disk_fills(self, how):
        """intake's disk fills in the middle of the check-ins: commands get
        UNAVAILABLE (nothing applied, nothing acknowledged lost), and once
        there is room again intake goes on by itself, without a restart."""
        c = self.cluster()
        c.start("billing")
        if how == "tmpfs":
            data = start_on_tmpfs(c, "intake", 16 * 1024)
        else:
            c.start("intake")
            data = os.path.join(c.home, "intake")
        pid = c.procs["intake"].pid
        m = MoveIn(c, self.csv(300, seed=33), log=lambda s: log(how + ":" + s))
        m.drv.live = ["intake", "billing"]
        m.run(last="move-in day")
        mdb = os.path.join(data, "data.mdb")
        if how == "tmpfs":  # a ballast file leaves 64 KiB free
            st = os.statvfs(data)
            with open(os.path.join(data, "ballast"), "wb") as f:
                f.write(b"\0" * (st.f_bavail * st.f_frsize - 64 * 1024))
            self.assertEqual(os.statvfs(data).f_bavail * os.statvfs(data).f_frsize, 64 * 1024)
        else:  # the file may grow 64 KiB more
            limit = os.path.getsize(mdb) + int(os.environ.get("PM_FAULT_FSIZE_SLACK", 64 * 1024))
            # the soft limit (the hard one stays: raising it back needs no privilege)
            subprocess.run(["prlimit", "--pid", str(pid), "--fsize=%d:" % limit], check=True)
        failed_at = []

        def make_room():
            if failed_at or m.drv.unavailable < 20:
                return
            failed_at.append(m.drv.unavailable)
            if how == "tmpfs":
                os.unlink(os.path.join(data, "ballast"))
            else:
                subprocess.run(["prlimit", "--pid", str(pid), "--fsize=unlimited:"], check=True)

        m.step("check-ins, the disk full")
        m.drv.run((m.checkin(u) for u in m.units), on_pump=make_room)
        self.assertTrue(failed_at, "the disk never filled")
        self.assertIn("storage:", m.drv.unavailable_said)
        self.assertIn("nothing was applied, retry with the same id", m.drv.unavailable_said)
        log("%s: %d check-ins answered UNAVAILABLE (%s) until there was room"
            % (how, m.drv.unavailable, m.drv.unavailable_said))
        self.assertEqual(c.procs["intake"].pid, pid)
        self.assertIsNone(c.procs["intake"].poll(), "intake died of the full disk")
        self.assertGreater(c.metric("intake", "pm_commit_failures_total"), 0)
        ms = m.drv.settle()
        # every check-in acknowledged is there, each once, and billing invoiced each
        for consumer, source, applied, last in consumers_exact(ms):
            self.assertEqual(applied, last, "%s applied %d of %s's %d events" % (consumer, applied, source, last))
        self.assertEqual(ms["billing"][("billing_invoices", "")], len(m.units))
        if how == "fsize":  # and durable: a restart finds them (a tmpfs would go with its namespace)
            c.kill("intake")
            c.start("intake")
        checked_in = [expect(m.drv.call("intake", "intake.unit.get", {"unit_id": u})).intake_unit_get.state
                      for u in m.units]
        self.assertEqual(collections.Counter(checked_in), {"CHECKED_IN": len(m.units)})
        # and intake goes on: the rest of the move-in, without inspection here
        m.drv.live = ["intake", "billing"]
        m.run(first="payments", last="payments")
        m.close()

    def test_a_disk_that_fills_file_size_limit(self):
        self.disk_fills("fsize")

    @unittest.skipUnless(can_mount_tmpfs(), "this machine lets no process mount a tmpfs (unshare -rm)")
    def test_a_disk_that_fills_tmpfs(self):
        self.disk_fills("tmpfs")


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""A whole batch move-in (集中交付), driven against running daemons the way
the people at the counters, the inspectors, the technicians and the cashiers
would drive it, on the manual clock so that weeks pass in seconds.

It is also the documentation of how the system is used. In order:

  day 0   the operator imports the developer's sales lists (pmctl import),
          sends the move-in notice (intake.notice.send) and books every unit
          into slots by building and floor (intake.schedule.plan); owners get
          the notice and their appointment by SMS (notify), and a reminder
          the day before.
  day 3-5 check-in days. At each slot the owners of its units come to the
          counter: identity and the estate's checklist (intake.checkin).
          Billing issues the move-in invoice; most pay at the counter at once
          (billing.payment.record). The joint inspection (验房) follows
          (inspection.round.start, .defect.record, .items.record,
          .round.complete): about one unit in five has defects; some owners
          take the unit with its defects (inspection.accept_with_defects).
          When the invoice is settled and the inspection passed (or was
          accepted), the keys are handed (intake.keys.handover). Owners who
          miss their slot (NO_SHOW) are moved to the reserve day
          (intake.appointment.move).
  then    technicians take the defects' work orders (workorder.assign or
          .claim, .start, .done; a few late, past the defect's deadline);
          when all of a unit's defects are rectified the inspector
          re-inspects (verify, or reopen one: the order goes back to its
          technician); owners who pay by bank withholding are settled by one
          reconciliation file (pmctl billing reconcile); late payers are
          chased (billing.dunning.step: T-7 message, T+3 call, T+7 visit,
          T+15 letter; the calls' outcomes recorded with
          billing.dunning.record) and pay at the counter some days after the
          due date; a few never pay and stay blocked at the key gate.

The clock moves through every working hour (09:00-18:00 estate time) and
stops once in the night (02:00), so timers fire when they would and notify's
quiet hours hold what falls at night. Before the clock moves, the driver waits
until every daemon has applied every event and notify has sent everything due
(settle), so a run is deterministic for a seed: the same files and seed give
the same commands at the same (manual) times.

    from movein import MoveIn
    m = MoveIn(endpoints, pmctl, files=[...], seed=7)
    result = m.run()           # {"units": {unit_id: {...}}, "log": [...], "kpis": {...}}

`python3 movein.py [--seed N] FILE.csv...` runs it against the daemons of
PM_HOME (./pm up does that with deploy/sample/)."""
import csv
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone

LOCAL = timezone(timedelta(hours=8))  # estate time (Asia/Shanghai)
MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000
DAEMONS = ["intake", "inspection", "workorder", "billing", "notify", "gateway"]
DOCUMENTS = ["身份证", "购房合同"]
AGREEMENTS = ["前期物业服务协议", "业主临时公约", "消防安全责任书", "装修协议", "委托银行代收款协议书"]
# what a defect looks like when the inspector writes it down, by category
DEFECT_TEXT = {
    "墙面/天花": ["墙面空鼓约0.5平方米", "天花板有裂缝", "墙角渗水发霉"],
    "地面": ["地面起砂", "地砖空鼓两块", "地面不平，高差超过3毫米"],
    "门窗": ["窗扇关闭不严", "入户门锁芯卡滞", "推拉门滑轨变形"],
    "给排水": ["水管接头渗水", "地漏排水不畅", "水压不足"],
    "电气": ["插座不通电", "开关面板松动", "弱电箱缺少模块"],
    "燃气": ["燃气表具未安装到位", "阀门关闭不严"],
    "固定设施": ["洁具安装不牢固", "烟道口未封堵"],
    "消防": ["烟感探测器缺失", "喷淋头被涂料覆盖"],
    "其他": ["层高与图纸不符", "室内有建筑垃圾未清"],
}


def local(ms):
    return datetime.fromtimestamp(ms / 1000, LOCAL)


def at(day, hhmm="00:00"):
    """ms of a local date (date or 'YYYY-MM-DD') and time 'HH:MM'."""
    if isinstance(day, str):
        day = date.fromisoformat(day)
    h, m = (int(x) for x in hhmm.split(":"))
    return int(datetime(day.year, day.month, day.day, h, m, tzinfo=LOCAL).timestamp() * 1000)


def rfc3339(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def yuan(fen):
    return "%d.%02d" % (fen // 100, fen % 100)


def protos(source=None):
    """Makes the protobuf modules of proto/ importable (protoc into a temp dir
    once per process; an integrator does the same from the .proto files)."""
    try:
        from pm.v1 import envelope_pb2  # noqa: F401
        return
    except ImportError:
        pass
    source = source or os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
    out = tempfile.mkdtemp(prefix="pmpy.")
    files = sorted(os.path.join("pm/v1", f) for f in os.listdir(os.path.join(source, "proto/pm/v1"))
                   if f.endswith(".proto"))
    subprocess.run(["protoc", "--python_out=" + out, "-I", "."] + files, check=True,
                   cwd=os.path.join(source, "proto"))
    sys.path.insert(0, out)


# --- talking to the daemons ---------------------------------------------------------------


class Reply:
    """A daemon's answer: status name, message, body as a dict (proto field names)."""

    def __init__(self, status, message, body):
        self.status, self.message, self.body = status, message, body  # body: {reply field: dict}
        self.data = next(iter(body.values())) if body else {}

    @property
    def ok(self):
        return self.status == "OK"

    def __repr__(self):
        return "%s: %s" % (self.status, self.message)


class Rpc:
    """One DEALER per daemon, many requests in flight (the daemons group-commit
    them), replies matched by request id. Bodies are dicts mapped onto the
    method's protobuf message, as `pmctl call` maps JSON."""

    def __init__(self, endpoints, actor="movein"):
        import zmq
        from google.protobuf import json_format
        from pm.v1 import envelope_pb2
        self.E, self.json_format, self.zmq = envelope_pb2, json_format, zmq
        self.ctx = zmq.Context.instance()
        self.actor = actor
        self.socks = {}
        for d, ep in endpoints.items():
            s = self.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(ep)
            self.socks[d] = s
        self.n = 0
        self.prefix = "%x" % int(time.time() * 1000)

    def close(self):
        for s in self.socks.values():
            s.close()

    def _request(self, method, body, rid):
        self.n += 1
        req = self.E.Request(id=rid or "movein:%s:%d" % (self.prefix, self.n), method=method, actor=self.actor)
        field = method.replace(".", "_")
        getattr(req, field).SetInParent()
        if body:
            self.json_format.ParseDict(body, getattr(req, field))
        return req

    def _reply(self, rep):
        field = rep.WhichOneof("body")
        body = {field: self.json_format.MessageToDict(getattr(rep, field), preserving_proto_field_name=True)} \
            if field else {}
        return Reply(self.E.Status.Name(rep.status), rep.message, body)

    def many(self, daemon, calls, window=256, timeout_s=60):
        """calls: [(method, body, request id or None)]. Replies in the same order."""
        sock = self.socks[daemon]
        reqs = [self._request(m, b, rid) for m, b, rid in calls]
        index = {}
        for i, r in enumerate(reqs):
            index.setdefault(r.id, []).append(i)
        out = [None] * len(reqs)
        sent = got = 0
        deadline = time.monotonic() + timeout_s
        while got < len(reqs):
            while sent < len(reqs) and sent - got < window:
                sock.send_multipart([b"", reqs[sent].SerializeToString()])
                sent += 1
            if not sock.poll(100):
                if time.monotonic() > deadline:
                    raise RuntimeError("%s did not answer %s in %ds" % (daemon, reqs[got].method, timeout_s))
                continue
            rep = self.E.Reply()
            rep.ParseFromString(sock.recv_multipart()[-1])
            for i in index.get(rep.id, []):
                if out[i] is None:
                    out[i] = self._reply(rep)
                    got += 1
                    break
        return out

    def fanout(self, method, body=None, daemons=None, timeout_s=60):
        """The same request to several daemons at once (each its own id); raw Reply protos by daemon."""
        daemons = daemons or list(self.socks)
        want = {}
        for d in daemons:
            req = self._request(method, body, None)
            want[req.id] = d
            self.socks[d].send_multipart([b"", req.SerializeToString()])
        out = {}
        deadline = time.monotonic() + timeout_s
        while len(out) < len(want):
            for d in daemons:
                if d in out:
                    continue
                while self.socks[d].poll(0):
                    rep = self.E.Reply()
                    rep.ParseFromString(self.socks[d].recv_multipart()[-1])
                    if want.get(rep.id) == d:
                        out[d] = rep
                        break
            if len(out) < len(want):
                if time.monotonic() > deadline:
                    raise RuntimeError("no answer to %s from %s" % (method, [d for d in daemons if d not in out]))
                self.zmq.select([self.socks[d] for d in daemons if d not in out], [], [], 0.1)
        return out

    def call(self, daemon, method, body=None, rid=None):
        return self.many(daemon, [(method, body, rid)])[0]

    def must(self, daemon, method, body=None, rid=None):
        r = self.call(daemon, method, body, rid)
        if not r.ok:
            raise RuntimeError("%s %s %s -> %s" % (daemon, method, json.dumps(body, ensure_ascii=False), r))
        return r.body


# --- the batch as delivered -----------------------------------------------------------------


def read_rows(path):
    """The rows of a sales list (UTF-8 with or without BOM, or GBK), with their line numbers."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = [h.strip() for h in rows[0]]
    return [(i + 2, dict(zip(header, r))) for i, r in enumerate(rows[1:])]


class Unit:
    """One unit of the batch and what its people will do (drawn from the seed)."""

    def __init__(self, unit_id, estate, building, rng):
        self.id, self.estate, self.building = unit_id, estate, building
        self.owners = []  # [{name, phone, id_number}] in intake's order
        self.rng = rng
        self.noshow = rng.random() < 0.03
        n = rng.choices([0, 1, 2, 3], weights=[80, 12, 6, 2])[0]
        self.defects_wanted = n
        self.reopen = n > 0 and rng.random() < 0.2        # the inspector finds one defect not fixed
        self.late_fix = n > 0 and rng.random() < 0.15     # one order done after the defect's deadline
        self.accept = n > 0 and rng.random() < 0.25       # takes the unit with its defects
        # after the keys: a repair request (报修) a few days later; some owners reject the first fix
        self.repair = rng.random() < 0.05
        self.repair_rejected = self.repair and rng.random() < 0.3
        # one order waits for parts and is not finished by the end: the unit stays blocked on its defects
        self.stuck = n > 0 and not self.accept and rng.random() < 0.12
        self.pay = rng.choices(["counter", "partial", "bank", "late", "unpaid"], weights=[67, 5, 12, 10, 6])[0]
        self.bank_fails = self.pay == "bank" and rng.random() < 0.1
        self.channel = rng.choice(["counter_card", "counter_card", "counter_cash"])
        # filled in as it happens
        self.slot_ms = 0
        self.rebooked = False
        self.bank_line = None
        self.reopened = False
        self.key_refusal = ""
        self.came = None
        self.checked_in_ms = 0
        self.invoice = None      # {"invoice_id", "total_fen", "due_ms"}
        self.paid_ms = 0
        self.paid_fen = 0
        self.paid_by = ""
        self.defects = []        # defect ids
        self.inspected = False   # round 1 done
        self.passed_ms = 0
        self.accepted_ms = 0
        self.keys_ms = 0
        self.did = []            # (local time, what)


class MoveIn:
    def __init__(self, endpoints, pmctl, files, seed=7, start="2026-12-01", say=None, workdir=None):
        """endpoints: {daemon: command endpoint}; pmctl: callable(*args) ->
        CompletedProcess (text) for the operator's file tools; files: the sales
        lists; start: day 0 (estate date)."""
        protos()
        self.rpc = Rpc(endpoints)
        self.pmctl = pmctl
        self.files = files
        self.seed = seed
        self.day0 = date.fromisoformat(start)
        self.say = say or (lambda s: None)
        self.workdir = workdir or tempfile.mkdtemp(prefix="movein.")
        self.units = {}
        self.estates = {}        # estate_id -> {"name", "units": [...], "dispatch", "techs": [...]}
        self.log = []
        self.now = 0
        self.agenda = []         # [(ms, seq, fn, args)]
        self.aseq = 0
        self.orders = {}         # order_id -> what the driver planned for it
        self.tech_load = {}
        self.settles = 0
        self.rejected_rows = []
        self.end_ms = 0

    # --- bookkeeping ---------------------------------------------------------------------

    def note(self, unit, what):
        t = local(self.now).strftime("%m-%d %H:%M")
        self.log.append((self.now, unit.id if unit else "", what))
        if unit:
            unit.did.append((t, what))

    def later(self, ms, fn, *args):
        self.aseq += 1
        self.agenda.append((ms, self.aseq, fn, args))
        self.agenda.sort(key=lambda x: (x[0], x[1]))

    def day(self, n, hhmm="09:00"):
        return at(self.day0 + timedelta(days=n), hhmm)

    def rid(self, *parts):
        """A request id that is the same for the same step of the same seed: a
        retried run changes nothing twice (the daemons keep the first reply)."""
        return "movein:%d:%s" % (self.seed, ":".join(str(p) for p in parts))

    def batch(self, daemon, calls, what):
        """Sends calls [(unit, method, body, rid)]; returns [(unit, Reply)]."""
        if not calls:
            return []
        replies = self.rpc.many(daemon, [(m, b, r) for _, m, b, r in calls])
        out = []
        for (u, m, b, _), rep in zip(calls, replies):
            if not rep.ok and rep.status not in ("CONFLICT",):
                raise RuntimeError("%s: %s %s -> %s" % (what, m, json.dumps(b, ensure_ascii=False), rep))
            out.append((u, rep))
        return out

    # --- time -----------------------------------------------------------------------------

    def set_clock(self, ms):
        assert ms >= self.now, "the clock only moves forward"
        for d, rep in self.rpc.fanout("ops.clock", {"set_to": rfc3339(ms)}, DAEMONS).items():
            if rep.status != 0:
                raise RuntimeError("%s refused the clock: %s (the daemons need [general] manual_clock = true, "
                                   "e.g. PM_GENERAL_MANUAL_CLOCK=true)" % (d, rep.message))
        self.now = ms

    def settle(self, deadline_s=120):
        """Waits until every daemon has applied every event its upstreams
        committed and notify has sent every message whose time has come, twice
        in a row with nothing new: the system has finished reacting."""
        self.settles += 1
        end = time.monotonic() + deadline_s
        before = None
        while True:
            seqs = {d: r.ops_ping.last_seq for d, r in self.rpc.fanout("ops.ping", None, DAEMONS).items()}
            lag, busy = [], 0
            for d, rep in self.rpc.fanout("ops.metrics", None, DAEMONS).items():
                for m in rep.ops_metrics.metrics:
                    if m.name == "pm_consumer_applied_seq":
                        src = m.labels.split('"')[1]
                        if m.value < seqs.get(src, 0):
                            lag.append("%s has %s:%d of %d" % (d, src, m.value, seqs[src]))
                    elif d == "notify" and (m.name in ("notify_due", "notify_in_flight") or
                                            (m.name == "notify_messages" and m.labels == 'state="SENDING"')):
                        busy += m.value
            state = (tuple(sorted(seqs.items())), busy)
            if not lag and not busy and state == before:
                return
            before = state if not lag and not busy else None
            if time.monotonic() > end:
                raise RuntimeError("the daemons did not settle in %ds: %s%s" %
                                   (deadline_s, ", ".join(lag), " notify busy %d" % busy if busy else ""))
            time.sleep(0.002)

    def busy(self):
        """Work on the ground: check-in days, open work orders, re-inspections."""
        return self.now < self.day(6) or any(u.defects and not u.passed_ms and not u.stuck
                                             for u in self.units.values())

    def next_stop(self, to):
        """The next stop before `to`: every working hour (09:00-18:00) while
        there is work on the ground, else 09:00 and 10:00; and 02:00 each night."""
        hours = [2] + list(range(9, 19)) if self.busy() else [2, 9, 10]
        d = local(self.now).date()
        while at(d) < to:
            for h in hours:
                t = at(d, "%02d:00" % h)
                if self.now < t < to:
                    return t
            d += timedelta(days=1)
        return to

    def advance(self, to):
        """Moves the clock to `to` stop by stop, doing the routine work of each working hour."""
        while self.now < to:
            t = self.next_stop(to)
            self.set_clock(t)
            self.settle()
            if 9 <= local(t).hour <= 18 and local(t).minute == 0:
                self.routine()

    def run(self):
        self.set_clock(self.day(0, "09:00"))
        self.settle()
        self.later(self.day(0, "09:10"), self.import_files)
        self.later(self.day(0, "09:40"), self.setup_estates)
        self.later(self.day(0, "09:50"), self.send_notices)
        self.later(self.day(0, "10:30"), self.plan)
        while self.agenda:
            ms, _, fn, args = self.agenda.pop(0)
            if ms > self.now:
                self.advance(ms)
            fn(*args)
            self.settle()
        result = self.collect()
        self.rpc.close()
        return result

    # --- day 0: import, estates, notices, plan ------------------------------------------------

    def import_files(self):
        accepted = {}
        for path in self.files:
            r = self.pmctl("--json", "import", path)
            if r.returncode not in (0, 3):
                raise RuntimeError("pmctl import %s -> %d\n%s%s" % (path, r.returncode, r.stdout, r.stderr))
            rep = json.loads(r.stdout.strip().splitlines()[-1])
            bad = {x["line"] for x in rep.get("rejections", [])}
            self.rejected_rows += [dict(x, file=os.path.basename(path)) for x in rep.get("rejections", [])]
            self.say("imported %s: %d created, %d updated, %d rejected" %
                     (os.path.basename(path), rep.get("created", 0), rep.get("updated", 0), rep.get("rejected", 0)))
            for line, row in read_rows(path):
                if line in bad:
                    continue
                uid = "%s/%s/%s" % (row["estate_id"], row["building"], row["unit"])
                accepted.setdefault(uid, (row, []))[1].append(row)
        for uid in sorted(accepted):
            row, rows = accepted[uid]
            u = Unit(uid, row["estate_id"], row["building"], random.Random("%d:%s" % (self.seed, uid)))
            self.units[uid] = u
            e = self.estates.setdefault(u.estate, {"name": row["estate_name"], "units": []})
            e["units"].append(u)
        # the owners in intake's order, with the ID number each will show at the counter
        ids = {}
        for _, rows in accepted.values():
            for row in rows:
                ids[(row["estate_id"], row["building"], row["unit"], row["phone"].strip())] = row["id_number"].strip()
        got = self.rpc.many("intake", [("intake.unit.get", {"unit_id": u.id}, None) for u in self.units.values()])
        for u, rep in zip(self.units.values(), got):
            unit = rep.body["intake_unit_get"]["unit"]
            for o in unit.get("owners", []):
                num = ids.get((u.estate, u.building, unit["unit"], o.get("phone", "")), "")
                u.owners.append({"name": o.get("name", ""), "phone": o.get("phone", ""), "id_number": num})
            who = [i for i, o in enumerate(u.owners) if o["id_number"]]
            u.came = who[-1] if len(who) > 1 and u.rng.random() < 0.3 else who[0]
            self.note(u, "imported: %d owner(s)" % len(u.owners))

    def setup_estates(self):
        """What an estate needs before its move-in: a fee schedule, technicians, a checklist."""
        for eid, e in sorted(self.estates.items()):
            sched = self.rpc.call("billing", "billing.schedule.get", {"estate_id": eid})
            if not sched.data.get("effective"):
                self.rpc.must("billing", "billing.schedule.set", {
                    "estate_id": eid, "effective_date": "2026-01-01", "property_fee": "2.50",
                    "maintenance_fund": "55.00", "parking": "120.00", "prepaid_months": 12,
                    "items": [{"name": "垃圾清运费", "amount": "350.00"},
                              {"name": "装修押金", "amount": "2000.00", "deposit": True}]},
                    rid=self.rid("schedule", eid))
                self.say("%s had no fee schedule: set the default one (2.50 元/m2/月, 12 months prepaid)" % eid)
            staff = self.rpc.must("workorder", "workorder.staff.get",
                                  {"estate_id": eid})["workorder_staff_get"].get("technicians", [])
            if not [t for t in staff if "civil" in t.get("skills", [])]:
                n = int(eid[1:]) if eid[1:].isdigit() else 99
                team = "T%d" % n
                for i, (name, role, skills) in enumerate([("沈国栋", "lead", ["water", "electric", "civil", "general"]),
                                                          ("韩立军", "technician", ["civil", "general"]),
                                                          ("冯海波", "technician", ["water", "electric", "elevator"])]):
                    self.rpc.must("workorder", "workorder.staff.set", {
                        "technician": "%s%d" % (team, i + 1), "name": name, "team": team,
                        "team_name": "%s工程组" % e["name"], "role": role, "estates": [eid], "skills": skills,
                        "phone": "1390%03d%04d" % (n % 1000, i + 1), "shift": "ON_SHIFT"},
                        rid=self.rid("staff", eid, i))
                self.say("%s had no technicians: added team %s (3 people)" % (eid, team))
            e["template"] = self.rpc.must("inspection", "inspection.template.get",
                                          {"estate_id": eid})["inspection_template_get"]["items"]
        self.settle()

    def send_notices(self):
        first, last = self.day0 + timedelta(days=3), self.day0 + timedelta(days=5)
        for eid, e in sorted(self.estates.items()):
            r = self.rpc.must("intake", "intake.notice.send", {
                "estate_id": eid, "window": "%s 至 %s" % (first, last), "place": "%s1号楼一层物业服务中心" % e["name"],
                "fees_note": "物业费按面积预交12个月，维修基金按面积一次缴纳，可刷卡或现金"},
                rid=self.rid("notice", eid))["intake_notice_send"]
            self.say("%s: move-in notice to %d units" % (eid, r.get("requested", 0)))
        for u in self.units.values():
            self.note(u, "notice sent")

    def plan(self):
        """Two check-in days and a reserve day for no-shows, 09:00-17:00, 30-minute slots."""
        days = [str(self.day0 + timedelta(days=n)) for n in (3, 4, 5)]
        for eid, e in sorted(self.estates.items()):
            per_counter = 2
            counters = max(1, -(-len(e["units"]) // (2 * 16 * per_counter)))
            r = self.rpc.must("intake", "intake.schedule.plan", {
                "estate_id": eid, "days": [{"date": d} for d in days], "opens": "09:00", "closes": "17:00",
                "slot_minutes": 30, "counters": counters, "per_counter": per_counter,
                "place": "%s1号楼一层物业服务中心" % e["name"]}, rid=self.rid("plan", eid))["intake_schedule_plan"]
            e["counters"], e["per_counter"] = counters, per_counter
            self.say("%s: %d units booked into %d slots (%d counters) over %s to %s" %
                     (eid, r.get("booked", 0), r.get("slots", 0), counters, days[0], days[-1]))
        self.settle()
        got = self.rpc.many("intake", [("intake.unit.get", {"unit_id": u.id}, None) for u in self.units.values()])
        slots = {}
        for u, rep in zip(self.units.values(), got):
            appt = rep.body["intake_unit_get"].get("appointment", {})
            u.slot_ms = int(appt.get("slot_start_ms", 0))
            if u.slot_ms:
                slots.setdefault(u.slot_ms, []).append(u)
                self.note(u, "booked for %s" % local(u.slot_ms).strftime("%m-%d %H:%M"))
        for ms in sorted(slots):
            self.later(ms + 5 * MIN, self.slot, ms, slots[ms])
        for n in (3, 4, 5):
            self.later(self.day(n, "17:05"), self.rebook_noshows, n)
        self.later(self.day(10, "10:30"), self.bank_file)
        self.later(self.day(6, "18:30"), lambda: self.later(self.end_ms, self.finish))

    # --- check-in days ------------------------------------------------------------------------

    def slot(self, slot_ms, units):
        """The owners booked into this slot come to the counter (except the no-shows)."""
        come = [u for u in units if u.slot_ms == slot_ms and not u.checked_in_ms and (u.rebooked or not u.noshow)]
        calls = [(u, "intake.checkin", {"unit_id": u.id, "owner_index": u.came,
                                        "id_number": u.owners[u.came]["id_number"],
                                        "documents": DOCUMENTS, "agreements": AGREEMENTS},
                  self.rid("checkin", u.id)) for u in come]
        for u, rep in self.batch("intake", calls, "check-in"):
            if rep.ok:
                u.checked_in_ms = self.now
                self.note(u, "checked in (owner %d %s)" % (u.came, u.owners[u.came]["name"]))
            else:
                self.note(u, "check-in refused: %s" % rep.message)
        self.settle()
        done = [u for u in come if u.checked_in_ms]
        # the move-in invoice, issued by billing at the check-in
        for u, rep in zip(done, self.rpc.many("billing", [("billing.unit.get", {"unit_id": u.id}, None)
                                                          for u in done])):
            b = rep.body.get("billing_unit_get", {})
            inv = [i for i in b.get("invoices", []) if i.get("kind") == "move_in"]
            if inv:
                u.invoice = {"invoice_id": inv[0]["invoice_id"], "total_fen": int(inv[0].get("total_fen", 0)),
                             "due_ms": int(inv[0].get("due_ms", 0))}
                self.note(u, "invoice %s ¥%s due %s" % (u.invoice["invoice_id"], yuan(u.invoice["total_fen"]),
                                                      local(u.invoice["due_ms"]).strftime("%m-%d")))
                self.schedule_payment(u)
        # most pay at the cashier's counter, then go with an inspector to see their home
        t = self.now
        self.set_clock(t + 5 * MIN)
        self.pay([u for u in done if u.pay == "counter"], "counter")
        self.pay([u for u in done if u.pay == "partial"], "counter", part=5000)  # half now, the rest later
        self.set_clock(t + 10 * MIN)
        self.inspect_first([u for u in done])
        self.settle()
        self.set_clock(t + 20 * MIN)  # back at the counter for the keys
        self.settle()
        self.hand_keys()

    def schedule_payment(self, u):
        if u.pay in ("late", "partial") and u.invoice:
            self.later(u.invoice["due_ms"] + 5 * DAY + 10 * HOUR + 15 * MIN, self.pay_late, u)
        self.end_ms = max(self.end_ms, u.invoice["due_ms"] + 16 * DAY + 11 * HOUR)

    def pay(self, units, why, part=None):
        """Each unit's invoice at the counter: what is still open, or part of it."""
        calls = []
        for u in units:
            if not u.invoice or u.paid_ms:
                continue
            amount = u.invoice["total_fen"] - u.paid_fen
            if part:
                amount = amount * part // 10000 // 100 * 100  # in whole yuan
            calls.append((u, "billing.payment.record", {
                "invoice_id": u.invoice["invoice_id"], "amount_fen": amount, "channel": u.channel,
                "external_ref": "POS-%s-%s" % (u.invoice["invoice_id"], why),
                "payer": u.owners[u.came]["name"]}, self.rid("pay", u.id, why)))
        for u, rep in self.batch("billing", calls, "payment"):
            if rep.ok:
                paid = int(rep.data["payment"]["amount_fen"])
                u.paid_fen += paid
                if u.paid_fen >= u.invoice["total_fen"]:
                    u.paid_ms, u.paid_by = self.now, u.channel
                self.note(u, "paid ¥%s at the counter (%s)%s" % (yuan(paid), u.channel,
                                                               "" if u.paid_ms else ", the rest later"))
            else:
                self.note(u, "payment refused: %s" % rep.message)

    def pay_late(self, u):
        self.pay([u], "late")
        if u.paid_ms and u.bank_line:  # the failed withholding's line is dealt with
            self.rpc.must("billing", "billing.reconcile.resolve", {
                "file_name": u.bank_line[0], "line": u.bank_line[1],
                "note": "业主已于柜台缴费 (%s)" % u.invoice["invoice_id"]}, self.rid("resolve", u.id))
            self.note(u, "bank file line %s:%d resolved" % u.bank_line)

    def inspect_first(self, units):
        """Round 1 of the joint inspection: the whole checklist, defects on some units."""
        calls = [(u, "inspection.round.start", {"unit_id": u.id, "inspector": self.inspector(u)},
                  self.rid("round1", u.id)) for u in units]
        self.batch("inspection", calls, "round 1")
        calls = []
        for u in units:
            items = self.estates[u.estate]["template"]
            for k, item in enumerate(u.rng.sample(items, u.defects_wanted)):
                cat = item["category"]
                calls.append((u, "inspection.defect.record", {
                    "unit_id": u.id, "room": item["room"], "category": cat,
                    "severity": u.rng.choices(["MINOR", "MAJOR", "CRITICAL"], weights=[6, 3, 1])[0],
                    "description": u.rng.choice(DEFECT_TEXT.get(cat, DEFECT_TEXT["其他"])),
                    "location": item["room"], "photos": ["photo:%s:%d" % (u.id, k + 1)]},
                    self.rid("defect", u.id, k)))
        for u, rep in self.batch("inspection", calls, "defect"):
            d = rep.body["inspection_defect_record"]["defect"]
            u.defects.append(d["defect_id"])
            self.note(u, "defect %s %s %s %s" % (d["defect_id"], d.get("room", ""), d.get("category", ""),
                                                 d.get("severity", "")))
        self.batch("inspection", [(u, "inspection.items.record", {"unit_id": u.id, "remaining_ok": True},
                                   self.rid("items1", u.id)) for u in units], "items")
        for u, rep in self.batch("inspection", [(u, "inspection.round.complete", {"unit_id": u.id},
                                                 self.rid("complete1", u.id)) for u in units], "round 1 complete"):
            u.inspected = True
            rnd = rep.body["inspection_round_complete"]["round"]
            if rnd.get("passed"):
                u.passed_ms = self.now
                self.note(u, "inspection passed")
            else:
                self.note(u, "inspection failed: %d defect(s)" % len(rnd.get("defects", [])))
        accept = [u for u in units if u.accept and u.defects]
        for u, rep in self.batch("inspection", [(u, "inspection.accept_with_defects",
                                                 {"unit_id": u.id, "signature_ref": "SIGN-%s" % u.id},
                                                 self.rid("accept", u.id)) for u in accept], "accept"):
            u.accepted_ms = self.now
            self.note(u, "owner accepted the unit with %d open defect(s)" % len(u.defects))

    def inspector(self, u):
        return ["验房员周敏", "验房员郭峰", "验房员林晓"][sum(map(ord, u.id)) % 3]

    def rebook_noshows(self, n):
        """The day's no-shows, moved to the reserve day (their slots fill in order)."""
        missed = [u for u in self.units.values() if u.checked_in_ms == 0 and u.slot_ms and u.slot_ms < self.now]
        today = [u for u in self.units.values() if u.checked_in_ms and local(u.checked_in_ms).date() == local(self.now).date()]
        self.say("%s: %d owners checked in, %d inspected (%d with defects), %d paid at the counter, %d keys handed, "
                 "%d no-shows rebooked" % (local(self.now).strftime("%m-%d"), len(today), len(today),
                                           sum(1 for u in today if u.defects), sum(1 for u in today if u.paid_ms),
                                           sum(1 for u in today if u.keys_ms), len(missed)))
        if not missed:
            return
        got = self.rpc.many("intake", [("intake.unit.get", {"unit_id": u.id}, None) for u in missed])
        reserve = self.day0 + timedelta(days=5)
        moved = {}
        for u, rep in zip(missed, got):
            if rep.body["intake_unit_get"].get("state") != "NO_SHOW":
                continue
            self.note(u, "missed the appointment (NO_SHOW)")
            e = self.estates[u.estate]
            cap = e["counters"] * e["per_counter"]
            for k in range(16):
                slot = at(reserve, "%02d:%02d" % (9 + k // 2, 30 * (k % 2)))
                if sum(1 for x in e["units"] if x.slot_ms == slot) < cap:
                    break
            r = self.rpc.call("intake", "intake.appointment.move", {"unit_id": u.id, "slot_start_ms": slot},
                              self.rid("move", u.id))
            if not r.ok:
                self.note(u, "rebooking refused: %s" % r.message)
                continue
            u.slot_ms, u.rebooked = slot, True
            self.note(u, "rebooked for %s" % local(slot).strftime("%m-%d %H:%M"))
            moved.setdefault(slot, []).append(u)
        for slot, units in sorted(moved.items()):
            self.later(slot + 5 * MIN, self.slot, slot, units)

    # --- the routine of every working hour ----------------------------------------------------

    def routine(self):
        self.work_orders()
        self.reinspect()
        self.dunning_tasks()
        self.settle()
        self.hand_keys()

    def work_orders(self):
        """Technicians: take the defects' orders, go on site, finish (a few late)."""
        units = [u for u in self.units.values() if u.defects]
        if not units:
            return
        got = self.rpc.many("workorder", [("workorder.unit.get", {"unit_id": u.id}, None) for u in units])
        assign, start, done = [], [], []
        for u, rep in zip(units, got):
            for o in rep.body["workorder_unit_get"].get("orders", []):
                if o.get("source") != "DEFECT":
                    continue
                oid, state = o["order_id"], o.get("state")
                plan = self.orders.get(oid)
                if plan is None:
                    plan = self.orders[oid] = self.plan_order(u, o)
                if state == "ORDER_OPEN" and not plan.get("asked"):
                    assign.append((u, o, plan))
                elif state == "ASSIGNED" and self.now >= plan["start"]:
                    if int(o.get("rejections", 0)) > plan["redo"]:  # reopened: back to work
                        plan["redo"] = int(o.get("rejections", 0))
                        plan["start"] = self.now + HOUR
                        plan["done"] = self.now + 3 * HOUR
                        continue
                    start.append((u, o, plan))
                elif state == "IN_PROGRESS" and self.now >= plan["done"]:
                    done.append((u, o, plan))
        calls = []
        for u, o, plan in assign:
            tech = self.technician(u.estate, o.get("skill", ""))
            if not tech:
                continue
            plan["asked"] = True
            # an estate that dispatches by claims (抢单): the technician claims it; else the dispatcher assigns
            e = self.estates[u.estate]
            if e.get("claims") is None:
                r = self.rpc.call("workorder", "workorder.claim", {"order_id": o["order_id"], "technician": tech},
                                  self.rid("claim", o["order_id"]))
                e["claims"] = r.ok
                if r.ok:
                    self.note(u, "order %s claimed by %s" % (o["order_id"], tech))
                    continue
            method = "workorder.claim" if e["claims"] else "workorder.assign"
            calls.append((u, method, {"order_id": o["order_id"], "technician": tech},
                          self.rid(method, o["order_id"])))
        for u, rep in self.batch("workorder", calls, "assign"):
            o = rep.data.get("order", {})
            self.note(u, "order %s to %s" % (o.get("order_id"), o.get("technician")) if rep.ok else
                      "order refused: %s" % rep.message)
        self.order_steps("workorder.start", start, "on site")
        self.order_steps("workorder.done", done, "done")

    def order_steps(self, method, items, what):
        calls = [(u, method, {"order_id": o["order_id"]}, self.rid(method, o["order_id"], p["redo"]))
                 for u, o, p in items]
        for (u, o, p), (_, rep) in zip(items, self.batch("workorder", calls, what)):
            if rep.ok:
                self.note(u, "order %s %s" % (o["order_id"], what))
            else:
                self.note(u, "order %s %s refused: %s" % (o["order_id"], what, rep.message))

    def plan_order(self, u, o):
        """When the technician will be on site and done: before the deadline,
        except one order of a unit that is late (past it by a day)."""
        created = int(o.get("created_ms", self.now))
        deadline = int(o.get("complete_by_ms", 0)) or created + 3 * DAY
        start = created + 2 * HOUR
        done = start + max(2 * HOUR, (deadline - start) // 3)
        mine = [p for p in self.orders.values() if p["unit"] == u.id]
        if u.stuck and not mine:  # waiting for parts: on site, never done
            self.note(u, "order %s waits for parts" % o["order_id"])
            return {"unit": u.id, "start": start, "done": 1 << 62, "late": True, "redo": 0}
        if u.late_fix and not [p for p in mine if p["late"]]:
            return {"unit": u.id, "start": start, "done": deadline + DAY, "late": True, "redo": 0}
        return {"unit": u.id, "start": start, "done": done, "late": False, "redo": 0}

    def technician(self, eid, skill):
        staff = self.estates[eid].get("staff")
        if staff is None:
            staff = self.rpc.must("workorder", "workorder.staff.get",
                                  {"estate_id": eid})["workorder_staff_get"].get("technicians", [])
            self.estates[eid]["staff"] = staff
        fit = sorted((self.tech_load.get(t["technician"], 0), t["technician"]) for t in staff
                     if skill in t.get("skills", []) and t.get("on_shift"))
        if not fit:
            return None
        self.tech_load[fit[0][1]] = fit[0][0] + 1
        return fit[0][1]

    def reinspect(self):
        """Units whose defects are all rectified get their re-inspection (10:00-16:00)."""
        if not 10 <= local(self.now).hour <= 16:
            return
        units = [u for u in self.units.values() if u.defects and not u.passed_ms]
        if not units:
            return
        got = self.rpc.many("inspection", [("inspection.unit.get", {"unit_id": u.id}, None) for u in units])
        due = [u for u, rep in zip(units, got)
               if rep.body["inspection_unit_get"].get("status") == "INSPECTION_REINSPECTION_DUE"]
        for u, rep in self.batch("inspection", [(u, "inspection.round.start", {"unit_id": u.id,
                                                                              "inspector": self.inspector(u)},
                                                 self.rid("round", u.id, self.now)) for u in due], "re-inspection"):
            rnd = rep.body["inspection_round_start"]
            calls = []
            for d in rnd.get("to_verify", []):
                if u.reopen and not u.reopened:
                    u.reopened = True
                    calls.append((u, "inspection.defect.reopen", {"defect_id": d, "reason": "复查仍有渗水，需重新处理",
                                                                  "by": self.inspector(u)}, self.rid("reopen", d)))
                    self.note(u, "re-inspection: %s reopened" % d)
                else:
                    calls.append((u, "inspection.defect.verify", {"defect_id": d, "by": self.inspector(u)},
                                  self.rid("verify", d)))
            self.batch("inspection", calls, "verify")
            c = self.rpc.call("inspection", "inspection.round.complete", {"unit_id": u.id},
                              self.rid("complete", u.id, self.now))
            if c.ok and c.body["inspection_round_complete"]["round"].get("passed"):
                u.passed_ms = self.now
                self.note(u, "re-inspection passed: every defect verified")
            elif c.ok:
                self.note(u, "re-inspection failed")

    def dunning_tasks(self):
        """The collectors record what came of their calls, visits and letters."""
        if local(self.now).hour != 10:
            return
        q = self.rpc.must("billing", "ops.queues", {"limit": 100000})["ops_queues"]
        outcome = {"dunning_calls": "promised_to_pay", "dunning_visits": "visited", "dunning_letters": "sent",
                   "dunning_escalations": "escalated"}
        calls = []
        for queue in q.get("queues", []):
            if queue["name"] not in outcome:
                continue
            for item in queue.get("items", []):
                inv, step = item["key"].split(" ", 1)
                u = self.units.get(item.get("unit_id", ""))
                what = outcome[queue["name"]]
                if queue["name"] == "dunning_calls" and u and u.pay == "unpaid":
                    what = "no_answer"
                calls.append((u, "billing.dunning.record", {"invoice_id": inv, "step": step, "outcome": what},
                              self.rid("dunning", inv, step)))
        for u, rep in self.batch("billing", calls, "dunning outcome"):
            if u:
                self.note(u, "collector: %s" % rep.message)

    def bank_file(self):
        """The bank's withholding result for the owners who signed the mandate (委托银行代收款)."""
        units = [u for u in self.units.values() if u.pay == "bank" and u.invoice and not u.paid_ms]
        if not units:
            return
        path = os.path.join(self.workdir, "withholding-%s.csv" % local(self.now).strftime("%Y%m%d"))
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["external_ref", "unit_id", "invoice_id", "amount", "status", "paid_at"])
            for n, u in enumerate(units):
                w.writerow(["WH%s%05d" % (local(self.now).strftime("%Y%m%d"), n + 1), u.id, u.invoice["invoice_id"],
                            yuan(u.invoice["total_fen"]), "失败" if u.bank_fails else "成功",
                            local(self.now - HOUR).strftime("%Y-%m-%d %H:%M:%S")])
        r = self.pmctl("--json", "billing", "reconcile", path)
        if r.returncode not in (0, 3):
            raise RuntimeError("pmctl billing reconcile -> %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
        self.say("bank withholding file: %d lines, %d failed" % (len(units), sum(u.bank_fails for u in units)))
        for u in units:
            if u.bank_fails:
                self.note(u, "bank withholding failed (余额不足): pays at the counter in two days")
                u.channel = "counter_card"
                u.bank_line = (os.path.basename(path), units.index(u) + 2)
                self.later(self.now + 2 * DAY, self.pay_late, u)
            else:
                u.paid_ms, u.paid_by = self.now, "bank_withholding"
                self.note(u, "paid by bank withholding")

    def hand_keys(self):
        """Keys for every unit whose gate opened: the invoice settled, the inspection passed or accepted."""
        # (an owner who paid part asks anyway, once: the counter tells what is still open)
        cand = [u for u in self.units.values() if u.checked_in_ms and not u.keys_ms
                and (u.paid_ms or (u.paid_fen and not u.key_refusal)) and (u.passed_ms or u.accepted_ms)]
        calls = [(u, "intake.keys.handover", {"unit_id": u.id, "key_set": "A", "keys": 3,
                                              "received_by": u.owners[u.came]["name"]},
                  self.rid("keys", u.id)) for u in cand]
        for u, rep in self.batch("intake", calls, "keys"):
            if rep.ok:
                u.keys_ms = self.now
                self.note(u, "keys handed (set A, 3 keys)")
                if u.repair:
                    self.later(at(local(self.now).date() + timedelta(days=3), "10:00"), self.repair_report, u)
            elif u.key_refusal != rep.message:
                u.key_refusal = rep.message
                self.note(u, "keys refused: %s" % rep.message)

    # --- after the keys: repairs (报修 → 派单 → 上门 → 完成 → 业主签字确认 → 归档) -----------------------------

    def repair_report(self, u):
        cat = u.rng.choice(["water", "electric"])
        r = self.rpc.must("workorder", "workorder.create", {
            "unit_id": u.id, "kind": "repair", "category": cat, "channel": "phone",
            "description": "厨房水管接头漏水" if cat == "water" else "卧室插座不通电"},
            self.rid("repair", u.id))["workorder_create"]["order"]
        oid = r["order_id"]
        self.note(u, "repair %s reported by phone (%s)" % (oid, cat))
        self.settle()
        self.set_clock(self.now + 20 * MIN)  # the technician arrives within the half hour
        o = self.rpc.must("workorder", "workorder.get", {"order_id": oid})["workorder_get"]["order"]
        if o.get("state") == "ORDER_OPEN":
            tech = self.technician(u.estate, o.get("skill", ""))
            method = "workorder.claim" if self.estates[u.estate].get("claims") else "workorder.assign"
            self.rpc.must("workorder", method, {"order_id": oid, "technician": tech}, self.rid(method, oid))
        self.rpc.must("workorder", "workorder.start", {"order_id": oid}, self.rid("repair-start", oid))
        self.note(u, "repair %s: technician on site" % oid)
        self.later(self.now + 2 * HOUR, self.repair_done, u, oid, 0)

    def repair_done(self, u, oid, n):
        self.rpc.must("workorder", "workorder.done", {"order_id": oid, "note": "已更换配件并测试"},
                      self.rid("repair-done", oid, n))
        self.note(u, "repair %s done" % oid)
        self.later(at(local(self.now).date() + timedelta(days=1), "10:30"), self.repair_sign, u, oid, n)

    def repair_sign(self, u, oid, n):
        if u.repair_rejected and n == 0:
            self.rpc.must("workorder", "workorder.reject", {"order_id": oid, "reason": "仍有渗漏"},
                          self.rid("repair-reject", oid))
            self.note(u, "repair %s rejected by the owner: back to the technician" % oid)
            self.settle()
            self.set_clock(self.now + 30 * MIN)
            self.rpc.must("workorder", "workorder.start", {"order_id": oid}, self.rid("repair-start", oid, 1))
            self.later(self.now + 2 * HOUR, self.repair_done, u, oid, 1)
            return
        self.rpc.must("workorder", "workorder.confirm", {"order_id": oid, "satisfaction": 5 - n},
                      self.rid("repair-confirm", oid))
        self.note(u, "repair %s confirmed by the owner (satisfaction %d)" % (oid, 5 - n))

    def finish(self):
        keys = sum(1 for u in self.units.values() if u.keys_ms)
        self.say("%s: the move-in closes: %d of %d units have their keys; %d owners never paid, %d units wait for "
                 "their last defect" % (local(self.now).strftime("%m-%d"), keys, len(self.units),
                                        sum(1 for u in self.units.values() if u.pay == "unpaid"),
                                        sum(1 for u in self.units.values() if u.stuck)))

    # --- the end --------------------------------------------------------------------------------

    def collect(self):
        units = list(self.units.values())
        got = self.rpc.many("intake", [("intake.unit.get", {"unit_id": u.id}, None) for u in units])
        out = {}
        for u, rep in zip(units, got):
            b = rep.body["intake_unit_get"]
            gate = b.get("gate", {})
            out[u.id] = {
                "estate": u.estate, "building": u.building, "state": b.get("state"),
                "blockers": [] if b.get("state") == "KEYS_HANDED" else gate.get("missing", []) or [b.get("state")],
                "noshow": u.noshow, "pay": u.pay if not u.bank_fails else "bank_failed",
                "paid_by": u.paid_by, "invoice": u.invoice, "defects": list(u.defects),
                "accepted": bool(u.accepted_ms), "reopened": u.reopened,
                "late_fix": u.late_fix and bool(u.defects), "stuck": u.stuck, "repair": u.repair,
                "checked_in_ms": u.checked_in_ms, "keys_ms": u.keys_ms, "owners": len(u.owners),
                "did": u.did,
            }
        return {"units": out, "log": self.log, "rejected_rows": self.rejected_rows, "settles": self.settles,
                "start_ms": self.day(0, "09:00"), "end_ms": self.now}


def report(rpc, start, end):
    """The KPIs as the daemons give them, against the industry's targets: lines of text."""
    frm, to = local(start).strftime("%Y-%m-%d"), local(end).strftime("%Y-%m-%d")
    out = []

    def pct(a, b):
        return "%.1f%% (%d/%d)" % (100.0 * a / b, a, b) if b else "- (0/0)"
    for p in rpc.call("intake", "intake.progress", {}).data.get("estates", []):
        e = p["estate_id"]
        ins = rpc.call("inspection", "inspection.kpi", {"estate_id": e}).data.get("estate", {})
        col = rpc.call("billing", "billing.report.collection", {"estate_id": e}).data.get("estate", {})
        wo = rpc.call("workorder", "workorder.kpi", {"estate_id": e, "from": frm, "to": to}).data.get("total", {})
        out.append("%s %s  入住完成率 %s   一次验收合格率 %s   收缴率 %s (≥90%%)" % (
            e, p.get("estate_name", ""), pct(int(p.get("keys_handed", 0)), int(p.get("units", 0))),
            pct(int(ins.get("first_rounds_passed", 0)), int(ins.get("first_rounds_completed", 0))),
            col.get("rate") or "-"))
        out.append("%s  零修及时率 %s (≥95%%)   零修合格率 %s (≥98%%)" % (
            " " * (len(e) + 2 * len(p.get("estate_name", "")) + 1), pct(int(wo.get("on_time", 0)), int(wo.get("due", 0))),
            pct(int(wo.get("first_pass", 0)), int(wo.get("confirmed", 0)))))
    out.append("(keys handed / units: intake.progress; round 1 passed: inspection.kpi; collected / billed:")
    out.append(" billing.report.collection; the defects' work orders %s to %s: workorder.kpi)" % (frm, to))
    return out


def main():
    import argparse
    ap = argparse.ArgumentParser(description="Runs a batch move-in against the daemons of PM_HOME.")
    ap.add_argument("files", nargs="*", help="sales lists (CSV, UTF-8 or GBK)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--start", default="2026-12-01", help="day 0 (estate date)")
    ap.add_argument("--pmctl", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "../../build/tools/pmctl/pmctl"))
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--report", action="store_true", help="only print the KPIs (from the --json of a run)")
    a = ap.parse_args()

    def pmctl(*args):
        return subprocess.run([a.pmctl] + list(args), capture_output=True, text=True, timeout=600)
    eps = {e["daemon"]: e["command"] for e in json.loads(pmctl("--json", "endpoints").stdout)}
    protos()
    if a.report:
        with open(a.json, encoding="utf-8") as f:
            r = json.load(f)
        rpc = Rpc(eps)
        print("\n".join(report(rpc, r["start_ms"], r["end_ms"])))
        rpc.close()
        return
    t0 = time.monotonic()
    m = MoveIn(eps, pmctl, a.files, seed=a.seed, start=a.start, say=lambda s: print("   " + s, flush=True))
    r = m.run()
    if a.json:
        with open(a.json + ".tmp", "w", encoding="utf-8") as f:
            json.dump(r, f, ensure_ascii=False)
        os.replace(a.json + ".tmp", a.json)
    print("   %d units from %s to %s (estate time) in %.0f s on this machine" %
          (len(r["units"]), local(r["start_ms"]).strftime("%Y-%m-%d"), local(r["end_ms"]).strftime("%Y-%m-%d"),
           time.monotonic() - t0))


if __name__ == "__main__":
    main()

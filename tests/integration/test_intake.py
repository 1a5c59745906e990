#!/usr/bin/env python3
"""intake's whole move-in case through its real process: several hundred units
imported, the move-in notice (notify's outcomes played by a FakeUpstream), a
plan by building and floor, a share checked in, the settlement and inspection
outcomes fed by fake billing and inspection daemons, keys handed where the
gate opens and refused, naming why, where it does not; no-shows at the end of
the day; the board (pmctl top), one unit's case (pmctl unit) and the snapshot
a consumer would rebuild from."""
import csv
import json
import os
import subprocess
import sys
import tempfile
import unicodedata
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import SOURCE, Client, Cluster, FakeUpstream, generated_protos, poll  # noqa: E402

generated_protos()
from pm.v1 import billing_pb2 as B  # noqa: E402
from pm.v1 import envelope_pb2 as E  # noqa: E402
from pm.v1 import inspection_pb2 as N  # noqa: E402
from pm.v1 import notify_pb2 as M  # noqa: E402

GEN = os.path.join(SOURCE, "tests/support/gen_units.py")
AGREEMENTS = ["前期物业服务协议", "业主临时公约", "消防安全责任书", "装修协议", "委托银行代收款协议书"]


def width(line):
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


class MoveIn(unittest.TestCase):
    def setUp(self):
        self.c = Cluster()
        self.c.env["PM_GENERAL_MANUAL_CLOCK"] = "true"
        self.fake = {n: FakeUpstream(self.c, n) for n in ("inspection", "billing", "notify")}
        fd, self.csv = tempfile.mkstemp(suffix=".csv", prefix="units.", dir="/tmp")
        os.close(fd)
        subprocess.run([sys.executable, GEN, self.csv, "--units", "400", "--estates", "2"], check=True)
        self.c.start("intake")

    def tearDown(self):
        self.c.close()
        for f in self.fake.values():
            f.close()
        os.unlink(self.csv)

    def call(self, method, body, rc=0):
        r = self.c.pmctl("--json", "call", "intake", method, json.dumps(body), check=False)
        self.assertEqual(r.returncode, rc, "%s %s -> %d\n%s%s" % (method, body, r.returncode, r.stdout, r.stderr))
        return json.loads(r.stdout)

    def emit(self, source, type_, unit_id, **payload):
        self.fake[source].emit(type_, unit_id=unit_id, estate_id=unit_id.split("/")[0], **payload)

    def applied(self, source):
        want = len(self.fake[source].events)
        return lambda: self.c.metric("intake", "pm_consumer_applied_seq", 'source="%s"' % source) == want

    def test_move_in_from_import_to_keys(self):
        # the first owner's ID number of each unit, as the sales list has it
        first_id = {}
        with open(self.csv, encoding="utf-8") as f:
            for row in csv.DictReader(f):
                first_id.setdefault("%s/%s/%s" % (row["estate_id"], row["building"], row["unit"]), row["id_number"])
        r = self.c.pmctl("import", self.csv)
        self.assertIn("400 created", r.stdout)
        self.call("ops.clock", {"set_to": "2026-12-04T00:00:00Z"})

        # the notice; notify says it went out
        notice = self.call("intake.notice.send", {"estate_id": "E01", "window": "2026-12-05 to 2026-12-06",
                                                  "place": "1号楼一层物业服务中心"})["intake_notice_send"]
        self.assertEqual(notice["requested"], 200)
        e01 = sorted(u for u in first_id if u.startswith("E01/"))
        for u in e01:
            self.emit("notify", "notify.message.sent", u, message=M.MessageOutcome(
                unit_id=u, estate_id="E01", notice_id=notice["notice_id"], channel="sms", recipient="138****0000"))
        poll("intake to apply notify's outcomes", self.applied("notify"))
        p = self.call("intake.progress", {"estate_id": "E01"})["intake_progress"]["estates"][0]
        self.assertEqual({s["state"]: s.get("units", 0) for s in p["states"]}["NOTIFIED"], 200)

        # two days, 09:00-17:00, 30-minute slots, 4 counters of 2: 128 places a day
        plan = self.call("intake.schedule.plan", {
            "estate_id": "E01", "days": [{"date": "2026-12-05"}, {"date": "2026-12-06"}], "opens": "09:00",
            "closes": "17:00", "slot_minutes": 30, "counters": 4, "per_counter": 2,
            "place": "1号楼一层"})["intake_schedule_plan"]
        self.assertEqual((plan["slots"], plan["capacity"], plan["booked"]), (32, 256, 200))
        self.call("ops.clock", {"set_to": "2026-12-05T01:10:00Z"})  # 09:10 on the first day
        p = self.call("intake.progress", {"estate_id": "E01"})["intake_progress"]["estates"][0]
        self.assertEqual((p["today_capacity"], p["today_booked"]), (128, 128))
        self.assertTrue(all(s["booked"] <= s["capacity"] for s in p["today_slots"]))

        # the first 40 units of the plan check in
        booked = []
        for u in e01:
            a = self.call("intake.unit.get", {"unit_id": u})["intake_unit_get"]["appointment"]
            booked.append((a["slot_start_ms"], a.get("counter", 0), u))
        came = [u for _, _, u in sorted(booked)[:40]]
        for u in came:
            self.call("intake.checkin", {"unit_id": u, "owner_index": 0, "id_number": first_id[u],
                                         "documents": ["身份证", "购房合同"], "agreements": AGREEMENTS})
        # billing invoices all 40 and 30 are paid; inspection passes 20, fails 20, 10 of which accept
        for i, u in enumerate(came):
            inv = B.Invoice(invoice_id="INV-E01-%06d" % i, unit_id=u, estate_id="E01", kind="move_in",
                            total_fen=324000, open_fen=324000, state=B.ISSUED)
            self.emit("billing", "billing.invoice.issued", u, invoice=inv)
            if i < 30:
                inv.open_fen, inv.paid_fen, inv.state = 0, 324000, B.SETTLED
                self.emit("billing", "billing.invoice.settled", u, invoice=inv)
            if i % 2 == 0:
                self.emit("inspection", "inspection.round.passed", u,
                          round=N.InspectionRound(unit_id=u, estate_id="E01", round_no=1, passed=True))
            else:
                self.emit("inspection", "inspection.round.failed", u, round=N.InspectionRound(
                    unit_id=u, estate_id="E01", round_no=1, defects=[N.Defect(defect_id=u + "#1"),
                                                                     N.Defect(defect_id=u + "#2")]))
                if i % 4 == 1:
                    self.emit("inspection", "inspection.accepted_with_defects", u, accepted=N.AcceptedWithDefects(
                        unit_id=u, estate_id="E01", open_defects=2, signature_ref="SIG-%d" % i))
        poll("intake to apply billing's events", self.applied("billing"))
        poll("intake to apply inspection's events", self.applied("inspection"))

        handed, refused = [], []
        for i, u in enumerate(came):
            r = self.c.pmctl("call", "intake", "intake.keys.handover",
                             json.dumps({"unit_id": u, "key_set": "A", "keys": 2, "received_by": "业主"}),
                             check=False)
            gate_open = i < 30 and (i % 2 == 0 or i % 4 == 1)
            self.assertEqual(r.returncode, 0 if gate_open else 1, r.stdout + r.stderr)
            (handed if gate_open else refused).append(u)
            if not gate_open:
                self.assertIn("CONFLICT", r.stderr)
                if i >= 30:
                    self.assertIn("invoice INV-E01-%06d open: ¥3,240.00" % i, r.stderr)
                if i % 4 == 3:
                    self.assertIn("inspection round 1 failed: 2 defects open", r.stderr)
        self.assertEqual(len(handed), 23)
        p = self.call("intake.progress", {"estate_id": "E01"})["intake_progress"]["estates"][0]
        self.assertEqual(p["keys_handed"], 23)
        self.assertEqual((p["blocked"], p["blocked_invoice"], p["blocked_inspection"]), (17, 10, 10))
        self.assertEqual(p["checkins_today"], 40)
        q = self.c.pmctl("queues", "intake", "--limit", "100").stdout
        self.assertIn("blocked_at_key_gate (17)", q)
        for u in refused:
            self.assertIn(u, q)

        # the day ends: the units booked that day that did not come are no-shows
        self.call("ops.clock", {"set_to": "2026-12-05T09:30:00Z"})
        poll("the no-show timers", lambda: self.call("intake.progress", {"estate_id": "E01"})
             ["intake_progress"]["estates"][0].get("no_shows") == 88)
        missed = self.c.pmctl("events", "intake", "intake.appointment.missed").stdout.splitlines()
        self.assertEqual(len(missed), 88)

        # the board: every line in 80 columns
        r = self.c.pmctl("--timeout", "1000", "top", "--once")
        lines = r.stdout.splitlines()
        self.assertTrue(all(width(line) <= 80 for line in lines), "\n".join(lines))
        self.assertTrue(lines[0].startswith("pmctl top  2026-12-05T09:30:00.000Z (the daemons' clock)"), lines[0])
        self.assertRegex(r.stdout, r"(?m)^E01 +翠湖花园 +200 ")
        self.assertRegex(r.stdout, r"(?m)^E02 +锦绣江南 +200 +200 ")
        self.assertRegex(r.stdout, r"(?m)^intake +up +\d+ +lag: inspection 0, billing 0, notify 0")
        self.assertRegex(r.stdout, r"(?m)^workorder +DOWN")

        # one unit's case, each daemon's part
        u = handed[0]
        r = self.c.pmctl("--timeout", "1000", "unit", u, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("intake: KEYS_HANDED", r.stdout)
        self.assertRegex(r.stdout, r"owner 0 .* 1\d\d\*\*\*\*\d{4} .*ID \d{4}\*{10}[\dX]{4}")
        self.assertNotIn(first_id[u], r.stdout)
        self.assertRegex(r.stdout, r"ledger #1 +handed A x2, 业主")
        # a daemon that does not answer the method (a fake here) or is down is named, with why
        self.assertRegex(r.stdout, r"(?m)^billing: not available \(INVALID: fake billing answers")
        self.assertRegex(r.stdout, r"(?m)^inspection: not available \(")
        self.assertRegex(r.stdout, r"(?m)^workorder: not available \(")
        r = self.c.pmctl("--json", "--timeout", "1000", "unit", refused[-1], check=False)
        parts = json.loads(r.stdout)["parts"]
        self.assertEqual(parts["intake"]["state"], "CHECKED_IN")
        self.assertFalse(parts["intake"]["gate"].get("open", False))
        self.assertIn("error", parts["workorder"])

        # the snapshot a consumer rebuilds from restates every case
        cl = Client(self.c.endpoint("intake"))
        counts, token, after = {}, "", b""
        while True:
            req = E.Request(id="snap-%d-%s" % (len(counts), token), method="events.snapshot", actor="test")
            req.events_snapshot.token = token
            req.events_snapshot.after = after
            req.events_snapshot.max = 97
            rep = cl.call(req)
            self.assertEqual(rep.status, E.OK, rep.message)
            for ev in rep.events_snapshot.events:
                self.assertTrue(ev.snapshot)
                counts[ev.type] = counts.get(ev.type, 0) + 1
            token, after = rep.events_snapshot.token, rep.events_snapshot.after
            if rep.events_snapshot.done:
                break
        cl.close()
        self.assertEqual(counts, {"intake.unit.registered": 400, "intake.appointment.booked": 72,
                                  "intake.unit.checked_in": 40, "intake.keys.handed": 23})


if __name__ == "__main__":
    unittest.main(verbosity=2)

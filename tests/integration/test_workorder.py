#!/usr/bin/env python3
"""workorder's real process, with FakeUpstream playing intake and inspection:
a repair request breaches its SLA when the clock is advanced (pmctl clock
advance) and shows in the queue and in the KPIs; a defect's order goes out,
is done (the event inspection turns into RECTIFIED), survives a kill -9, and
is confirmed and archived by the inspector's verification.

The all-daemons version (inspection's RECTIFIED seen in inspection itself)
runs once inspection is merged."""
import json
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Cluster, FakeUpstream, generated_protos, poll  # noqa: E402

generated_protos()
from pm.v1 import inspection_pb2 as P  # noqa: E402
from pm.v1 import intake_pb2 as I  # noqa: E402

T0 = "2026-12-01T01:00:00Z"  # 09:00 in the estates' zone (UTC+8)
T0_MS = 1796086800000
HOUR = 3600 * 1000


class ClockedFake(FakeUpstream):
    """A fake upstream that also takes the manual clock, so `pmctl clock`
    (which asks every daemon in the config) succeeds with the fakes."""

    def _reply(self, ident, frames, req):
        if req.method != "ops.clock":
            return super()._reply(ident, frames, req)
        rep = self.pb.Reply(id=req.id, status=self.pb.OK)
        rep.ops_clock.manual = True
        self.router.send_multipart([ident] + frames[1:-1] + [rep.SerializeToString()])


CONF = """[general]
manual_clock = true
heartbeat_ms = 200
replay_timeout_ms = 500
[intake]
command = ipc://${home}/run/intake.cmd
events = ipc://${home}/run/intake.pub
data = ${home}/intake
[inspection]
command = ipc://${home}/run/inspection.cmd
events = ipc://${home}/run/inspection.pub
data = ${home}/inspection
[workorder]
command = ipc://${home}/run/workorder.cmd
events = ipc://${home}/run/workorder.pub
data = ${home}/workorder
map_size_mb = 16
"""


class Workorder(unittest.TestCase):
    def setUp(self):
        self.c = Cluster()
        path = os.path.join(self.c.home, "pm.conf")
        with open(path, "w") as f:
            f.write(CONF)
        self.c.env["PM_CONFIG"] = path  # the three daemons of this test, for pmctl and the daemon
        self.intake = ClockedFake(self.c, "intake")
        self.inspection = ClockedFake(self.c, "inspection")

    def tearDown(self):
        self.c.close()
        self.intake.close()
        self.inspection.close()

    # --- helpers -------------------------------------------------------------------------

    def call(self, method, body, check=True):
        r = self.c.pmctl("--json", "call", "workorder", method, json.dumps(body, ensure_ascii=False), check=False)
        if check and r.returncode != 0:
            raise AssertionError("%s %s -> %d\n%s%s" % (method, body, r.returncode, r.stdout, r.stderr))
        return json.loads(r.stdout) if r.stdout.strip() else {}, r

    def order(self, order_id):
        return self.call("workorder.get", {"order_id": order_id})[0]["workorder_get"]["order"]

    def events(self, prefix="workorder."):
        r = self.c.pmctl("--json", "events", "workorder", prefix)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def queue(self, name):
        r = self.c.pmctl("--json", "queues", "workorder", "--limit", "100")
        for q in json.loads(r.stdout).get("queues", []):
            if q["name"] == name:
                return q
        raise AssertionError("no queue " + name)

    def queued(self, name, key):
        return any(it.get("key") == key for it in self.queue(name).get("items", []))

    def unit(self, unit_id, keys):
        u = I.Unit(unit_id=unit_id, estate_id="E01", building="1", area_cm2=8950,
                   owners=[I.Owner(name="张伟", phone="13812345678")])
        self.intake.emit("intake.unit.registered", unit_id=unit_id, estate_id="E01", unit=u)
        if keys:
            self.intake.emit("intake.keys.handed", unit_id=unit_id, estate_id="E01",
                             keys_handed=I.KeysHanded(unit_id=unit_id, estate_id="E01", key_set="A", keys=2, unit=u))

    def defect(self, type_, no, deadline_ms=0, reason=""):
        d = P.Defect(defect_id="E01/3-301#%d" % no, unit_id="E01/3-301", estate_id="E01", building="3",
                     round_no=1, room="卫生间", category="给排水", severity=P.MAJOR, description="地漏返水",
                     recorded_by="验房员小刘", deadline_ms=deadline_ms, reason=reason)
        self.inspection.emit(type_, unit_id="E01/3-301", estate_id="E01", defect=d)

    def start(self):
        self.c.start("workorder")
        self.c.pmctl("clock", "set", T0)

    # --- tests --------------------------------------------------------------------------------

    def test_repair_breaches_its_sla_and_shows_in_queue_and_kpi(self):
        self.unit("E01/1-101", keys=True)
        self.start()
        poll("workorder to apply intake's unit and keys", lambda: self.c.metric("workorder", "workorder_units") == 1
             and self.call("workorder.unit.get", {"unit_id": "E01/1-101"}, check=False)[0]
             .get("workorder_unit_get", {}).get("keys_handed"))
        body, _ = self.call("workorder.create", {"unit_id": "E01/1-101", "kind": "repair", "category": "water",
                                                 "description": "厨房水管漏水", "channel": "phone"})
        o = body["workorder_create"]["order"]
        oid = o["order_id"]
        self.assertEqual(oid, "WO-E01-000001")
        self.assertEqual(o["state"], "ASSIGNED")
        self.assertEqual(o["technician"], "T01")
        self.assertEqual(int(o["respond_by_ms"]), T0_MS + HOUR // 2)

        self.c.pmctl("clock", "advance", "20m")
        poll("the respond warning", lambda: self.queued("about_to_breach", oid))
        self.c.pmctl("clock", "advance", "15m")
        poll("the respond breach", lambda: self.queued("breached", oid))
        item = [it for it in self.queue("breached")["items"] if it["key"] == oid][0]
        self.assertIn("escalated to T01 王建国", item["reason"])
        sla = [e for e in self.events("workorder.sla.") if e.get("sla", {}).get("order_id") == oid]
        self.assertEqual([e["type"] for e in sla], ["workorder.sla.warning", "workorder.sla.breached"])
        self.assertEqual(sla[1]["sla"]["team_lead"], "T01 王建国")
        self.assertEqual(sla[1]["sla"]["deadline"], "respond")

        # a day later it is past its complete-by too: late for 及时率
        self.c.pmctl("clock", "advance", "1d")
        poll("the complete breach", lambda: len([e for e in self.events("workorder.sla.breached")
                                                 if e["sla"]["order_id"] == oid]) == 2)
        self.assertTrue(self.order(oid)["complete_breached"])
        kpi, _ = self.call("workorder.kpi", {"estate_id": "E01", "from": "2026-12-02"})
        total = kpi["workorder_kpi"]["total"]
        self.assertEqual(int(total["due"]), 1)
        self.assertEqual(int(total.get("on_time", 0)), 0)
        self.assertEqual(int(total["complete_breaches"]), 1)
        self.assertEqual(self.c.metric("workorder", "workorder_on_time_rate", 'estate="E01"'), 0)
        self.assertEqual(self.c.metric("workorder", "workorder_queue", 'estate="E01",queue="breached"'), 1)

        # done late, signed: the queue empties, the KPI keeps it late
        self.call("workorder.start", {"order_id": oid})
        self.call("workorder.done", {"order_id": oid})
        self.assertFalse(self.queued("breached", oid))
        self.call("workorder.confirm", {"order_id": oid, "satisfaction": 3})
        self.assertEqual(self.order(oid)["state"], "ARCHIVED")
        kpi, _ = self.call("workorder.kpi", {"estate_id": "E01", "from": "2026-12-01", "to": "2026-12-02",
                                             "group_by": "technician"})
        t01 = [r for r in kpi["workorder_kpi"]["rows"] if r["group"] == "T01"][0]
        self.assertEqual(int(t01["due"]), 1)
        self.assertEqual(int(t01["confirmed"]), 1)
        self.assertEqual(int(t01.get("on_time", 0)), 0)

    def test_defect_order_is_rectified_and_archived_by_the_verification(self):
        deadline = T0_MS + 72 * HOUR
        self.defect("inspection.defect.recorded", 1, deadline)
        self.start()

        def the_order():
            body, r = self.call("workorder.unit.get", {"unit_id": "E01/3-301"}, check=False)
            orders = body.get("workorder_unit_get", {}).get("orders", [])
            return orders[0] if orders else None

        o = poll("the defect's order", the_order)
        oid = o["order_id"]
        self.assertEqual(o["defect_id"], "E01/3-301#1")
        self.assertEqual(o["source"], "DEFECT")
        self.assertEqual(int(o["complete_by_ms"]), deadline)
        self.assertEqual(o["technician"], "T01")  # 给排水 needs the water skill
        # the same defect again (inspection replays it): still one order
        self.defect("inspection.defect.recorded", 1, deadline)
        poll("the repeat to be applied", lambda: self.c.metric("workorder", "pm_consumer_applied_seq",
                                                               'source="inspection"') == 2)
        self.assertEqual(self.c.metric("workorder", "workorder_open_orders", 'estate="E01"'), 1)

        self.call("workorder.start", {"order_id": oid})
        self.call("workorder.done", {"order_id": oid, "note": "更换地漏"})
        done = [e for e in self.events("workorder.order.done") if e["order"]["order_id"] == oid]
        self.assertEqual(len(done), 1)
        self.assertEqual(done[0]["order"]["defect_id"], "E01/3-301#1")  # what inspection marks RECTIFIED
        _, r = self.call("workorder.confirm", {"order_id": oid, "satisfaction": 5}, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("inspection.defect.verified", r.stdout + r.stderr)

        # workorder dies; the verification arrives meanwhile; nothing is lost or applied twice
        self.c.kill("workorder")
        self.defect("inspection.defect.verified", 1)
        self.c.start("workorder")
        poll("the verification", lambda: self.order(oid)["state"] == "ARCHIVED")
        types = [e["type"] for e in self.events("workorder.order.") if e["order"]["order_id"] == oid]
        self.assertEqual(types, ["workorder.order.created", "workorder.order.assigned", "workorder.order.started",
                                 "workorder.order.done", "workorder.order.confirmed", "workorder.order.archived"])
        self.assertEqual(self.c.metric("workorder", "pm_consumer_applied_total", 'source="inspection"'), 3)
        kpi, _ = self.call("workorder.kpi", {"estate_id": "E01", "from": "2026-12-01", "group_by": "category"})
        row = kpi["workorder_kpi"]["rows"][0]
        self.assertEqual(row["group"], "defect")
        self.assertEqual(int(row["confirmed"]), 1)
        self.assertEqual(int(row["first_pass"]), 1)

    def test_refusals_are_clear_and_change_nothing(self):
        self.unit("E01/1-101", keys=False)
        self.start()
        poll("the unit", lambda: self.c.metric("workorder", "workorder_units") == 1)
        _, r = self.call("workorder.create", {"unit_id": "E01/1-101", "kind": "repair", "category": "water",
                                              "description": "漏水"}, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("CONFLICT", r.stdout + r.stderr)
        self.assertIn("keys are not handed", r.stdout + r.stderr)
        _, r = self.call("workorder.create", {"unit_id": "E09/1-101", "kind": "repair", "category": "water",
                                              "description": "漏水"}, check=False)
        self.assertIn("NOT_FOUND", r.stdout + r.stderr)
        body, _ = self.call("workorder.create", {"unit_id": "E01/1-101", "kind": "complaint",
                                                 "description": "排队太久"})
        oid = body["workorder_create"]["order"]["order_id"]
        self.call("workorder.staff.set", {"technician": "K02", "shift": "OFF_SHIFT"})
        _, r = self.call("workorder.assign", {"order_id": oid, "technician": "K02"}, check=False)
        self.assertIn("K02 郑丽 is off shift", r.stdout + r.stderr)
        self.assertEqual(self.order(oid)["technician"], "K01")
        self.assertEqual(self.c.metric("workorder", "pm_outbox_last_seq"), 2)  # created, assigned: nothing else


if __name__ == "__main__":
    unittest.main(verbosity=2)

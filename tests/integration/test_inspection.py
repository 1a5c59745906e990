#!/usr/bin/env python3
"""inspection's real process, with intake and workorder played by FakeUpstream:
check-in -> a failed round with three defects -> three work orders -> done ->
re-inspection due -> a passing re-inspection (defects verified) -> what intake
and workorder would read from inspection's events; a second unit accepted with
an open defect that then goes overdue on the manual clock; KPIs recomputed from
`pmctl events inspection`; and a kill -9 that loses and repeats nothing."""
import json
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Cluster, FakeUpstream, generated_protos, poll  # noqa: E402

generated_protos()
from pm.v1 import intake_pb2 as I  # noqa: E402
from pm.v1 import workorder_pb2 as W  # noqa: E402

U1 = "E01/3/2-301"
U2 = "E01/3/2-302"


def unit(unit_id):
    estate, building, number = unit_id.split("/")
    return I.Unit(unit_id=unit_id, estate_id=estate, estate_name="滨江花园", building=building, unit=number,
                  area_cm2=8950, owners=[I.Owner(name="张伟", phone="13812345678")])


class Inspection(unittest.TestCase):
    def setUp(self):
        self.c = Cluster()
        self.c.env["PM_GENERAL_MANUAL_CLOCK"] = "true"
        self.intake = FakeUpstream(self.c, "intake")
        self.workorder = FakeUpstream(self.c, "workorder")
        self.orders = 0

    def tearDown(self):
        self.c.close()
        self.intake.close()
        self.workorder.close()

    # --- helpers -------------------------------------------------------------------

    def call(self, method, body, want="OK"):
        r = self.c.pmctl("--json", "call", "inspection", method, json.dumps(body, ensure_ascii=False), check=False)
        reply = json.loads(r.stdout)
        self.assertEqual(reply["status"], want, "%s %s -> %s" % (method, body, reply))
        return reply

    def events(self, prefix="inspection."):
        r = self.c.pmctl("events", "inspection", prefix)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def applied(self, source):
        return self.c.metric("inspection", "pm_consumer_applied_seq", 'source="%s"' % source)

    def wait_applied(self, up):
        n = len(up.events)
        poll("inspection to apply %s's %d events" % (up.name, n), lambda: self.applied(up.name) == n)

    def order(self, what, order_id, defect_id, state):
        self.workorder.emit("workorder.order." + what, unit_id=defect_id.split("#")[0], estate_id="E01",
                            order=W.WorkOrder(order_id=order_id, source=W.DEFECT, defect_id=defect_id,
                                              unit_id=defect_id.split("#")[0], estate_id="E01", state=state,
                                              category="defect", technician="王师傅"))

    def defect_state(self, defect_id):
        u = self.call("inspection.unit.get", {"unit_id": defect_id.split("#")[0]})["inspection_unit_get"]
        return [d["defect"]["state"] for d in u["defects"] if d["defect"]["defect_id"] == defect_id][0]

    def queue(self, name):
        r = self.c.pmctl("--json", "call", "inspection", "ops.queues", '{"limit": 100}')
        for q in json.loads(r.stdout)["ops_queues"].get("queues", []):
            if q["name"] == name:
                q.setdefault("count", 0)
                q.setdefault("items", [])
                return q
        self.fail("no queue " + name)

    def first_round(self, unit_id, defects):
        self.call("inspection.round.start", {"unit_id": unit_id, "inspector": "李工"})
        ids = []
        for room, category, severity in defects:
            r = self.call("inspection.defect.record",
                          {"unit_id": unit_id, "room": room, "category": category, "severity": severity,
                           "description": "%s%s有问题" % (room, category), "photos": ["photo:%d" % len(ids)]})
            ids.append(r["inspection_defect_record"]["defect"]["defect_id"])
        self.call("inspection.items.record", {"unit_id": unit_id, "remaining_ok": True})
        r = self.call("inspection.round.complete", {"unit_id": unit_id})
        return ids, r

    # --- the move-in's inspection, end to end ---------------------------------------

    def test_the_rectification_loop_through_the_real_process(self):
        for u in (U1, U2):
            self.intake.emit("intake.unit.registered", unit_id=u, estate_id="E01", unit=unit(u))
        self.intake.emit("intake.unit.checked_in", unit_id=U1, estate_id="E01",
                         checked_in=I.CheckedIn(unit_id=U1, estate_id="E01", owner_name="张伟", unit=unit(U1)))
        self.c.start("inspection")
        self.wait_applied(self.intake)  # replayed from intake at start
        u1 = self.call("inspection.unit.get", {"unit_id": U1})["inspection_unit_get"]
        self.assertEqual(u1["status"], "INSPECTION_AWAITING")
        # U2 checks in while inspection runs: the live event opens it
        self.intake.emit("intake.unit.checked_in", unit_id=U2, estate_id="E01",
                         checked_in=I.CheckedIn(unit_id=U2, estate_id="E01", owner_name="李娜", unit=unit(U2)))
        self.wait_applied(self.intake)
        self.assertEqual(self.call("inspection.unit.get", {"unit_id": U2})["inspection_unit_get"]["status"],
                         "INSPECTION_AWAITING")

        # round 1 of U1 fails with three defects
        ids, r = self.first_round(U1, [("客厅", "墙面/天花", "MINOR"), ("厨房", "给排水", "MAJOR"),
                                       ("卫生间", "地面", "CRITICAL")])
        self.assertEqual(ids, [U1 + "#1", U1 + "#2", U1 + "#3"])
        self.assertIn("FAILED: 3 defect(s) open", r["message"])
        failed = [e for e in self.events("inspection.round.failed")]
        self.assertEqual(len(failed), 1)
        self.assertEqual([d["defect_id"] for d in failed[0]["round"]["defects"]], ids)
        recorded = self.events("inspection.defect.recorded")
        self.assertEqual([e["defect"]["defect_id"] for e in recorded], ids)
        self.assertEqual(recorded[1]["defect"]["severity"], "MAJOR")
        self.assertEqual(recorded[1]["defect"]["deadline_ms"] - recorded[1]["defect"]["recorded_ms"], 3 * 86400000)

        # workorder makes one order per defect (as it would from defect.recorded) ...
        for i, d in enumerate(ids):
            self.order("created", "WO-E01-%06d" % (i + 1), d, W.ORDER_OPEN)
        self.wait_applied(self.workorder)
        self.assertEqual([self.defect_state(d) for d in ids], ["RECTIFYING"] * 3)
        self.assertEqual(len(self.events("inspection.defect.rectifying")), 3)
        # ... and finishes them: the last one makes the re-inspection due
        for i, d in enumerate(ids[:2]):
            self.order("done", "WO-E01-%06d" % (i + 1), d, W.DONE)
        self.wait_applied(self.workorder)
        self.assertEqual(self.events("inspection.reinspection."), [])
        self.order("done", "WO-E01-000003", ids[2], W.DONE)
        self.wait_applied(self.workorder)
        due = self.events("inspection.reinspection.due")
        self.assertEqual(len(due), 1)
        self.assertEqual(due[0]["reinspection"]["defect_ids"], ids)
        q = self.queue("reinspections_due")
        self.assertEqual(q["count"], 1)
        self.assertEqual(q["items"][0]["key"], U1)
        r = self.c.pmctl("queues", "inspection")
        self.assertIn("reinspections_due (1)", r.stdout)

        # verifying before the re-inspection starts is refused, and changes nothing
        r = self.call("inspection.defect.verify", {"defect_id": ids[0]}, want="CONFLICT")
        self.assertIn("start round 2", r["message"])
        # the re-inspection verifies all three: the unit passes
        r = self.call("inspection.round.start", {"unit_id": U1, "inspector": "李工"})
        self.assertEqual(r["inspection_round_start"]["to_verify"], ids)
        self.assertEqual(self.queue("reinspections_due")["count"], 0)
        for d in ids:
            self.call("inspection.defect.verify", {"defect_id": d, "by": "李工"})
        r = self.call("inspection.round.complete", {"unit_id": U1})
        self.assertIn("PASSED", r["message"])
        r = self.call("inspection.round.complete", {"unit_id": U1}, want="CONFLICT")  # twice: refused
        self.assertIn("already completed", r["message"])

        # what intake reads: round 2 of U1 passed; what workorder reads: each order's defect verified
        rounds = self.events("inspection.round.")
        passed = [e for e in rounds if e["type"] == "inspection.round.passed"]
        self.assertEqual(len(passed), 1)
        self.assertEqual(passed[0]["unit_id"], U1)
        self.assertEqual(passed[0]["round"]["round_no"], 2)
        self.assertTrue(passed[0]["round"]["passed"])
        verified = self.events("inspection.defect.verified")
        self.assertEqual([(e["defect"]["defect_id"], e["defect"]["order_id"]) for e in verified],
                         [(d, "WO-E01-%06d" % (i + 1)) for i, d in enumerate(ids)])
        # workorder confirms and archives them: inspection takes note, nothing changes
        before = len(self.events())
        for i, d in enumerate(ids):
            self.order("confirmed", "WO-E01-%06d" % (i + 1), d, W.CONFIRMED)
            self.order("archived", "WO-E01-%06d" % (i + 1), d, W.ARCHIVED)
        self.wait_applied(self.workorder)
        self.assertEqual(len(self.events()), before)
        u1 = self.call("inspection.unit.get", {"unit_id": U1})["inspection_unit_get"]
        self.assertEqual(u1["status"], "INSPECTION_PASSED")
        self.assertEqual(len(u1["rounds"]), 2)
        self.assertEqual([h["what"] for h in u1["defects"][0]["history"]],
                         ["recorded", "rectifying", "rectified", "verified"])

        # U2: one defect, the owner accepts the unit with it; its deadline passes
        ids2, r = self.first_round(U2, [("阳台", "门窗", "MAJOR")])
        r = self.call("inspection.accept_with_defects", {"unit_id": U2, "signature_ref": "SIG-2026-0042"})
        acc = self.events("inspection.accepted_with_defects")
        self.assertEqual(len(acc), 1)
        self.assertEqual(acc[0]["unit_id"], U2)
        self.assertEqual(acc[0]["accepted"]["open_defects"], 1)
        self.assertEqual(acc[0]["accepted"]["defect_ids"], ids2)
        self.c.pmctl("call", "inspection", "ops.clock", '{"advance_by": "3d1m"}')
        poll("the deadline to pass", lambda: len(self.events("inspection.defect.overdue")) == 1)
        over = self.events("inspection.defect.overdue")[0]
        self.assertEqual(over["defect"]["defect_id"], ids2[0])
        q = self.queue("overdue_defects")
        self.assertEqual([i["key"] for i in q["items"]], ids2)
        self.c.pmctl("call", "inspection", "ops.clock", '{"advance_by": "10d"}')
        self.assertEqual(len(self.events("inspection.defect.overdue")), 1)  # once

        # the KPIs equal what the events say
        self.check_kpis()

        # kill -9 and restart: state, cursors and timers survive; nothing is applied twice
        seq = self.c.metric("inspection", "pm_outbox_last_seq")
        self.c.kill("inspection", signal.SIGKILL)
        self.c.start("inspection")
        self.wait_applied(self.intake)
        self.wait_applied(self.workorder)
        self.assertEqual(self.c.metric("inspection", "pm_outbox_last_seq"), seq)
        self.assertEqual(self.c.metric("inspection", "pm_consumer_applied_total", 'source="intake"'),
                         len(self.intake.events))
        self.assertEqual(self.c.metric("inspection", "pm_consumer_applied_total", 'source="workorder"'),
                         len(self.workorder.events))
        self.assertEqual(self.call("inspection.unit.get", {"unit_id": U1})["inspection_unit_get"]["status"],
                         "INSPECTION_PASSED")
        self.check_kpis()
        # a live order after the restart still moves U2's defect
        self.order("created", "WO-E01-000004", ids2[0], W.ORDER_OPEN)
        self.order("done", "WO-E01-000004", ids2[0], W.DONE)
        self.wait_applied(self.workorder)
        self.assertEqual(self.defect_state(ids2[0]), "RECTIFIED")
        self.assertEqual(self.queue("overdue_defects")["count"], 0)
        self.assertEqual(len(self.events("inspection.reinspection.due")), 2)
        self.check_kpis()
        self.assertEqual(self.c.metric("inspection", "pm_events_dead_total") or 0, 0)

    def check_kpis(self):
        evs = self.events()
        want = {"units": 2, "units_opened": 2}
        want["units_inspected"] = sum(1 for e in evs if e["type"] == "inspection.round.opened"
                                      and e["round"]["round_no"] == 1)
        first = [e for e in evs if e["type"] in ("inspection.round.passed", "inspection.round.failed")
                 and e["round"]["round_no"] == 1]
        want["first_rounds_completed"] = len(first)
        want["first_rounds_passed"] = sum(1 for e in first if e["round"].get("passed"))
        want["units_passed"] = sum(1 for e in evs if e["type"] == "inspection.round.passed")
        want["units_accepted_with_defects"] = sum(1 for e in evs if e["type"] == "inspection.accepted_with_defects")
        want["defects"] = sum(1 for e in evs if e["type"] == "inspection.defect.recorded")
        verified = [e for e in evs if e["type"] == "inspection.defect.verified"]
        want["defects_verified"] = len(verified)
        want["verify_ms_total"] = sum(e["at_ms"] - e["defect"]["recorded_ms"] for e in verified)
        want["overdue"] = sum(1 for e in evs if e["type"] == "inspection.defect.overdue")
        latest = {}
        for e in evs:
            if "defect" in e:
                latest[e["defect"]["defect_id"]] = e["defect"]
        want["defects_open"] = sum(1 for d in latest.values() if d["state"] != "VERIFIED")
        want["overdue_open"] = sum(1 for d in latest.values()
                                   if d.get("overdue") and d["state"] in ("DEFECT_OPEN", "RECTIFYING"))
        by_cat = {}
        for e in evs:
            if e["type"] == "inspection.defect.recorded":
                by_cat[e["defect"]["category"]] = by_cat.get(e["defect"]["category"], 0) + 1
        k = self.call("inspection.kpi", {"estate_id": "E01"})["inspection_kpi"]["estate"]
        got = {name: k.get(name, 0) for name in want}
        self.assertEqual(got, want)
        self.assertEqual({c["name"]: c["count"] for c in k.get("by_category", [])}, by_cat)
        rate = want["first_rounds_passed"] / want["first_rounds_completed"]
        self.assertEqual(k.get("first_time_pass_rate", 0), rate)
        if want["defects_verified"]:
            self.assertAlmostEqual(k["mean_days_to_verify"],
                                   want["verify_ms_total"] / want["defects_verified"] / 86400000.0, places=9)
        self.assertEqual(self.c.metric("inspection", "inspection_defects", 'estate="E01"'), want["defects"])
        # per building in inspection.kpi only, not as gauges (a million units are 5,000 buildings)
        self.assertEqual(self.c.metric("inspection", "inspection_defects", 'estate="E01",building="3"'), 0)  # absent

    def test_bad_input_through_the_process(self):
        self.intake.emit("intake.unit.registered", unit_id=U1, estate_id="E01", unit=unit(U1))
        self.c.start("inspection")
        self.wait_applied(self.intake)
        r = self.call("inspection.round.start", {"unit_id": U1, "inspector": "李工"}, want="CONFLICT")
        self.assertIn("inspection not open", r["message"])
        r = self.call("inspection.round.start", {"unit_id": "E01/9/9-999", "inspector": "李工"}, want="NOT_FOUND")
        self.assertIn("E01/9/9-999", r["message"])
        self.call("inspection.open", {"unit_id": U1})
        self.call("inspection.round.start", {"unit_id": U1, "inspector": "李工"})
        r = self.call("inspection.defect.record", {"unit_id": U1, "room": "书房", "category": "地面",
                                                   "severity": "MINOR", "description": "x"}, want="INVALID")
        self.assertIn("客厅", r["message"])
        r = self.c.pmctl("call", "inspection", "inspection.defect.record",
                         '{"unit_id": "%s", "severity": "HUGE"}' % U1, check=False)
        self.assertEqual(r.returncode, 2)  # pmctl refuses the enum before sending
        self.assertIn("HUGE", r.stderr)
        r = self.call("inspection.round.complete", {"unit_id": U1}, want="CONFLICT")
        self.assertIn("35 of 35 checklist items not recorded", r["message"])
        self.assertEqual(self.events(), [e for e in self.events() if e["type"] == "inspection.round.opened"])

    def test_an_estates_checklist_through_pmctl(self):
        self.intake.emit("intake.unit.registered", unit_id="E02/1/1-101", estate_id="E02", unit=unit("E02/1/1-101"))
        self.c.start("inspection")
        self.wait_applied(self.intake)
        r = self.c.pmctl("checklist", "E02")  # the default, as CSV
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "room,category,check")
        self.assertEqual(len(lines), 36)
        self.assertIn("built in", r.stderr)
        path = os.path.join(self.c.home, "e02.csv")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines[:3] + ['主卧,"墙面/天花","空鼓, 裂缝"', "主卧,燃起,typo"]) + "\n")
        r = self.c.pmctl("checklist", "E02", path, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("e02.csv:5: category '燃起' is not one of", r.stderr)
        self.assertEqual(len(self.c.pmctl("checklist", "E02").stdout.splitlines()), 36)  # unchanged
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines[:3] + ['主卧,"墙面/天花","空鼓, 裂缝"']) + "\n")
        r = self.c.pmctl("checklist", "E02", path)
        self.assertIn("3 lines in 2 rooms", r.stdout)
        r = self.c.pmctl("checklist", "E02")
        self.assertEqual(r.stdout.splitlines()[3], '主卧,墙面/天花,"空鼓, 裂缝"')
        self.call("inspection.open", {"unit_id": "E02/1/1-101"})
        r = self.call("inspection.round.start", {"unit_id": "E02/1/1-101", "inspector": "李工"})
        self.assertEqual(len(r["inspection_round_start"]["items"]), 3)


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""billing's real process, with FakeUpstream playing intake and the manual
clock: the move-in invoice at check-in, the T-7 reminder, a payment at T+2
through the bank's reconciliation file (pmctl billing reconcile), no T+3 task
and no later step for the paid invoice while an unpaid one walks the whole
ladder, billing.invoice.settled for intake's key gate; a restart in the
middle; and the reconciliation file as spreadsheets and banks make it."""
import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Cluster, FakeUpstream, generated_protos, poll  # noqa: E402

generated_protos()
from pm.v1 import intake_pb2 as I  # noqa: E402

SCHEDULES = """; the estate's fees (收费标准)
[E01 2026-01-01]
property_fee = 2.80          ; 元/m2/月
maintenance_fund = 60.00     ; 元/m2, once
parking = 150.00             ; 元/space/月
prepaid_months = 12
item = 垃圾清运费, 300.00
deposit = 装修押金, 2000.00
"""

START = "2026-12-01T01:00:00Z"     # 09:00 estate time; the move-in invoice is due 2026-12-16
START_MS = 1796086800000
T_MINUS_7 = "2026-12-08T16:00:00Z"  # 2026-12-09 00:00 estate time
T_PLUS_2 = "2026-12-18T02:00:00Z"   # 2026-12-18 10:00
T_PLUS_40 = "2027-01-25T01:00:00Z"


def unit(unit_id, area_cm2, parking=0):
    estate, rest = unit_id.split("/")
    building, number = rest.split("-")
    return I.Unit(unit_id=unit_id, estate_id=estate, building=building, unit=number, area_cm2=area_cm2,
                  parking_spaces=parking, unit_type="residential")


class Billing(unittest.TestCase):
    def setUp(self):
        self.c = Cluster()
        self.c.env["PM_GENERAL_MANUAL_CLOCK"] = "true"
        # the clock jumps 55 days: keep the events replayable for the checks (the default keeps 30 days)
        self.c.env["PM_GENERAL_EVENT_RETENTION_D"] = "365"
        path = os.path.join(self.c.home, "schedules.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(SCHEDULES)
        self.c.env["PM_BILLING_SCHEDULE"] = path
        self.up = FakeUpstream(self.c, "intake")

    def tearDown(self):
        self.c.close()
        self.up.close()

    # --- helpers ------------------------------------------------------------------------

    def call(self, method, body=None, check=True):
        r = self.c.pmctl("--json", "call", "billing", method, json.dumps(body or {}), check=check)
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def clock(self, to):
        self.call("ops.clock", {"set_to": to})

    def events(self, prefix="billing."):
        r = self.c.pmctl("--json", "events", "billing", prefix)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def steps(self, invoice_id):
        return [e["dunning"]["step"] for e in self.events("billing.dunning.step")
                if e["dunning"]["invoice_id"] == invoice_id]

    def queue(self, name):
        r = self.c.pmctl("--json", "call", "billing", "ops.queues", '{"limit": 100}')
        for q in json.loads(r.stdout)["ops_queues"]["queues"]:
            if q["name"] == name:
                return q
        raise AssertionError("no queue " + name)

    def check_in(self, unit_id, area_cm2, parking=0):
        u = unit(unit_id, area_cm2, parking)
        self.up.emit("intake.unit.registered", unit_id=unit_id, estate_id="E01", unit=u)
        self.up.emit("intake.unit.checked_in", unit_id=unit_id, estate_id="E01",
                     checked_in=I.CheckedIn(unit_id=unit_id, estate_id="E01", owner_name="张伟",
                                            at_ms=START_MS, unit=u))

    def csv(self, name, text, encoding="utf-8"):
        path = os.path.join(self.c.home, name)
        with open(path, "wb") as f:
            f.write(text.encode(encoding) if isinstance(text, str) else text)
        return path

    # --- the move-in, paid through the bank ---------------------------------------------------

    def test_invoice_reminder_bank_payment_ladder_stops(self):
        self.c.start("billing")
        self.clock(START)
        self.check_in("E01/1-101", 8950, parking=1)   # paid at T+2 through the bank
        self.check_in("E01/1-102", 10000)             # never paid: walks the whole ladder
        inv = poll("the move-in invoices", lambda: (lambda evs: evs if len(evs) == 2 else None)(
            self.events("billing.invoice.issued")))
        first = inv[0]["invoice"]
        self.assertEqual(first["invoice_id"], "INV-E01-000001")
        self.assertEqual(first["kind"], "move_in")
        self.assertEqual(first["unit_id"], "E01/1-101")
        # 89.50 m2 x 2.80 x 12 + 1 x 150.00 x 12 + 89.50 x 60.00 + 300.00 + 2000.00, to the fen
        self.assertEqual(first["total_fen"], 300720 + 180000 + 537000 + 30000 + 200000)
        self.assertEqual(sum(line["amount_fen"] for line in first["lines"]), first["total_fen"])
        got = self.call("billing.invoice.get", {"invoice_id": "INV-E01-000001"})["billing_invoice_get"]
        self.assertEqual(got["next_step"], "T-7")

        # T-7: the reminder, for both
        self.clock(T_MINUS_7)
        poll("the T-7 reminders", lambda: self.steps("INV-E01-000001") == ["T-7"]
             and self.steps("INV-E01-000002") == ["T-7"])
        step = [e for e in self.events("billing.dunning.step")][0]["dunning"]
        self.assertEqual(step["action"], "message")
        self.assertEqual(step["open_fen"], first["total_fen"])

        # billing dies and comes back: its timers and its cursor are in its store
        self.c.kill("billing", signal.SIGKILL)
        self.c.start("billing")

        # T+2: the bank's file says it withheld the whole amount
        self.clock(T_PLUS_2)
        total = first["total_fen"]
        bank = self.csv("bank-20261218.csv",
                        "external_ref,unit_id,invoice_id,amount,status,paid_at\r\n"
                        "BK-20261218-0001,E01/1-101,INV-E01-000001,%d.%02d,成功,2026-12-18 10:00:00\r\n"
                        "BK-20261218-0002,E01/9-999,INV-E01-000999,100.00,成功,2026-12-18 10:00:00\r\n"
                        % (total // 100, total % 100))
        r = self.c.pmctl("billing", "reconcile", bank, check=False)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("2 lines: 1 matched", r.stdout)
        self.assertIn("1 unknown", r.stdout)
        self.assertIn("line 3: unknown: no invoice INV-E01-000999", r.stdout)
        settled = [e["invoice"] for e in self.events("billing.invoice.settled")]
        self.assertEqual([s["invoice_id"] for s in settled], ["INV-E01-000001"])
        self.assertEqual(settled[0]["kind"], "move_in")   # intake's key gate follows this
        self.assertEqual(settled[0].get("open_fen", 0), 0)  # (JSON leaves zeros out)
        pay = [e["payment"] for e in self.events("billing.payment.recorded")]
        self.assertEqual(len(pay), 1)
        self.assertEqual(pay[0]["channel"], "bank_withholding")
        self.assertEqual(pay[0]["external_ref"], "BK-20261218-0001")
        self.assertEqual(pay[0]["receipt_no"], "RCP-E01-000001")
        unmatched = self.queue("unmatched_lines")
        self.assertEqual(unmatched["count"], 1)
        self.assertEqual(unmatched["items"][0]["key"], "bank-20261218.csv:3")

        # the same file again: nothing twice
        r = self.c.pmctl("--json", "billing", "reconcile", bank, check=False)
        summary = json.loads(r.stdout)
        self.assertEqual((summary["matched"], summary["already_recorded"], summary["unknown"]), (0, 1, 1))
        self.assertEqual(len(self.events("billing.payment.recorded")), 1)

        # far past T+30: the unpaid invoice walked the whole ladder, the paid one stopped at T-7
        self.clock(T_PLUS_40)
        poll("the unpaid invoice's T+30", lambda: self.steps("INV-E01-000002")[-1:] == ["T+30"])
        self.assertEqual(self.steps("INV-E01-000002"), ["T-7", "T+3", "T+7", "T+15", "T+30"])
        self.assertEqual(self.steps("INV-E01-000001"), ["T-7"])
        for name in ("dunning_calls", "dunning_visits", "dunning_letters", "dunning_escalations"):
            keys = [i["key"] for i in self.queue(name).get("items", [])]
            self.assertEqual(len(keys), 1, name)
            self.assertTrue(keys[0].startswith("INV-E01-000002 "), keys)
        u = self.call("billing.unit.get", {"unit_id": "E01/1-101"})["billing_unit_get"]
        self.assertEqual(u.get("balance_fen", 0), 0)
        self.assertEqual(u["area_cm2"], 8950)
        # the call is made and recorded
        self.call("billing.dunning.record", {"invoice_id": "INV-E01-000002", "step": "T+3",
                                             "outcome": "promised_to_pay", "note": "pays on the 28th"})
        self.assertEqual(self.queue("dunning_calls").get("count", 0), 0)
        rate = self.call("billing.report.collection", {"estate_id": "E01", "period": "2026-12"})
        row = rate["billing_report_collection"]["estate"]
        self.assertEqual(row["collected_fen"], total)
        self.assertEqual(row["billed_fen"], total + 1166000)

    # --- the file as people make it ----------------------------------------------------------

    def test_reconciliation_file_as_banks_and_spreadsheets_make_it(self):
        self.c.start("billing")
        self.clock(START)
        for n in range(1, 5):
            self.check_in("E01/2-%d" % (200 + n), 10000)
        poll("four invoices", lambda: len(self.events("billing.invoice.issued")) == 4)
        total = self.call("billing.invoice.get", {"invoice_id": "INV-E01-000001"})["billing_invoice_get"]["invoice"][
            "total_fen"]
        yuan = "%d.%02d" % (total // 100, total % 100)
        grouped = "{:,}.{:02d}".format(total // 100, total % 100)
        # BOM, CRLF, columns in another order, amount in fen or quoted with a comma, a stray quote, a
        # field that is not UTF-8, three decimals, a failed withholding
        text = ("\ufeffstatus,paid_at,invoice_id,unit_id,external_ref,amount,amount_fen\r\n"
                "success,20261218101500,INV-E01-000001,E01/2-201,B-1,,%d\r\n"
                "成功,2026-12-18 10:15,INV-E01-000002,,B-2,\"%s\",\r\n"
                "success,,INV-E01-000003,,B-\"3,%s,\r\n"
                "success,,INV-E01-000003,,B-4,12.345,\r\n"
                "扣款失败,,INV-E01-000004,,B-5,%s,\r\n" % (total, grouped, yuan, yuan))
        data = text.encode("utf-8") + b"success,,INV-E01-000003,,B-\xb2\xe2,1.00,\r\n"
        path = self.csv("bank.csv", data)
        r = self.c.pmctl("billing", "reconcile", path, "--chunk", "2", check=False)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("6 lines: 2 matched", r.stdout)
        self.assertIn("1 failed, 3 rejected", r.stdout)
        self.assertIn("line 4: rejected:", r.stdout)
        self.assertIn("line 5: rejected: amount: '12.345' more than two decimals", r.stdout)
        self.assertIn("line 6: failed:", r.stdout)
        self.assertIn("line 7: rejected: column 5 (external_ref) is not UTF-8", r.stdout)
        states = {e["invoice"]["invoice_id"] for e in self.events("billing.invoice.settled")}
        self.assertEqual(states, {"INV-E01-000001", "INV-E01-000002"})
        # billing keeps the lines it judged; pmctl reports the ones it could not read
        self.assertEqual(self.queue("unmatched_lines").get("count", 0), 2)

        bad = self.csv("nohead.csv", "external_ref,invoice_id,status\nB-9,INV-E01-000003,success\n")
        r = self.c.pmctl("billing", "reconcile", bad, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no column 'amount_fen (or amount)'", r.stderr)
        r = self.c.pmctl("billing", "reconcile", os.path.join(self.c.home, "missing.csv"), check=False)
        self.assertEqual(r.returncode, 2)
        r = self.c.pmctl("billing", "settle", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown subcommand 'settle'", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

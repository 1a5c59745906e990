#!/usr/bin/env python3
"""The operations board in a real browser (Debian's chromium, headless, driven
by chromedriver through python3-selenium), against the six real daemons.

It drives a small move-in (tests/support/movein.py: import to keys on the
manual clock), opens the board with an integration token, and checks that
the page's figures equal the daemons' own answers: units and owners per
estate (intake.estate.get), units per building and state, completion and
units blocked at the key gate (intake.progress), the KPIs per estate and over
all estates (workorder.kpi of the page's 30 days, billing.report.collection,
inspection.kpi), every queue's count (ops.queues), each daemon's latest seq
and consumer lag, health; that it follows the event stream (a later import
shows up in the live feed and in the figures); that a daemon that stops
shows as 离线; and that it fits 1366x768 and a phone without sideways
scrolling. Screenshots go to the build tree: gateway-board.png and
gateway-board-phone.png."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../support"))
from harness import BUILD, SOURCE, Client, Cluster, generated_protos, poll  # noqa: E402

generated_protos()
from datetime import date, timedelta  # noqa: E402
from decimal import ROUND_HALF_UP, Decimal  # noqa: E402

import movein  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from pm.v1 import envelope_pb2 as E  # noqa: E402

GEN = os.path.join(SOURCE, "tests/support/gen_units.py")
DAEMONS = ["intake", "inspection", "workorder", "billing", "notify", "gateway"]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def pct(n, d):
    """n / d as the page writes it: one decimal, halves up (JavaScript's toFixed on the same double)."""
    return str(Decimal(100 * n / d).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)) + "%" if d else None


def browser(width, height):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
              "--user-data-dir=" + tempfile.mkdtemp(prefix="pmchrome."), "--window-size=%d,%d" % (width, height)):
        o.add_argument(a)
    o.binary_location = CHROMIUM
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)
    d.set_window_size(width, height)
    return d


class Board(unittest.TestCase):
    def setUp(self):
        self.c = Cluster()
        self.c.env.update({"PM_GATEWAY_LISTEN": "127.0.0.1:0", "PM_GATEWAY_CALL_TIMEOUT_MS": "1500",
                           "PM_GENERAL_MANUAL_CLOCK": "true", "PM_NOTIFY_SMS_RATE": "0", "PM_NOTIFY_EMAIL_RATE": "0"})
        self.files = []
        self.drivers = []
        self.clients = {}
        self.n = 0

    def tearDown(self):
        for d in self.drivers:
            d.quit()
        for c in self.clients.values():
            c.close()
        if "gateway" in self.c.procs:  # a clean stop; under the sanitizer build, nothing reported
            self.c.kill("gateway", signal.SIGTERM)
            log = self.c.read("gateway.log")
            for bad in ("Sanitizer", "runtime error:"):
                self.assertNotIn(bad, log, log[-4000:])
        self.c.close()
        for f in self.files:
            os.unlink(f)

    def csv(self, units, *extra):
        fd, path = tempfile.mkstemp(suffix=".csv", prefix="units.", dir="/tmp")
        os.close(fd)
        subprocess.run([sys.executable, GEN, path, "--units", str(units)] + list(extra), check=True)
        self.files.append(path)
        return path

    def call(self, daemon, method, body=None):
        """The daemon's own answer (straight to its ROUTER, not through the
        gateway) as {body field: dict}, or None when it is not OK."""
        if daemon not in self.clients:
            self.clients[daemon] = Client(self.c.endpoint(daemon))
        self.n += 1
        req = E.Request(id="board-test-%d" % self.n, method=method, actor="test:board")
        field = method.replace(".", "_")
        getattr(req, field).SetInParent()
        json_format.ParseDict(body or {}, getattr(req, field))
        rep = self.clients[daemon].call(req, timeout_ms=10000)
        if rep.status != E.OK:
            return None
        return {field: json_format.MessageToDict(getattr(rep, field), preserving_proto_field_name=True)}

    # --- what the daemons say ----------------------------------------------------------

    def expected(self, estates, up):
        """data-fig -> text, from the daemons' own answers."""
        want = {}
        for e in estates:
            r = self.call("intake", "intake.estate.get", {"estate_id": e})["intake_estate_get"]
            want["units:" + e] = str(r.get("units", 0))
            want["owners:" + e] = str(r.get("owners", 0))
        for d in up:
            q = self.call(d, "ops.queues", {"limit": 50})["ops_queues"]
            for queue in q.get("queues", []):
                want["queue:%s:%s" % (d, queue["name"])] = str(queue.get("count", 0))
            ping = self.call(d, "ops.ping")["ops_ping"]
            want["seq:" + d] = str(ping.get("last_seq", 0))
            want["health:" + d] = "正常"
            metrics = self.call(d, "ops.metrics")["ops_metrics"]["metrics"]
            want["lag:" + d] = str(int(sum(float(m.get("value", 0)) for m in metrics if m["name"] == "pm_consumer_lag")))
        today = None
        for e in estates:
            p = self.call("intake", "intake.progress", {"estate_id": e})["intake_progress"]
            est = [x for x in p.get("estates", []) if x["estate_id"] == e][0]
            today = est["today"]
            for b in est.get("buildings", []):
                for s in b.get("states", []):
                    want["state:%s:%s:%s" % (e, b["building"], s["state"])] = str(s.get("units", 0))
            want["completion:" + e] = "%d%%" % int(est.get("completion_pct", 0))
            want["appointments:" + e] = "%d / %d" % (int(est.get("today_booked", 0)), int(est.get("today_capacity", 0)))
            want["blocked:" + e] = str(est.get("blocked", 0))
        # the KPIs: per estate, and over all estates the sums of their counts
        frm = str(date.fromisoformat(today) - timedelta(days=29))
        sums = {}
        for e in estates:
            # (an estate a daemon knows nothing of yet is NOT_FOUND there: "—" on the page, out of the sums)
            wo = self.call("workorder", "workorder.kpi", {"estate_id": e, "from": frm, "to": today})
            col = self.call("billing", "billing.report.collection", {"estate_id": e})
            ins = self.call("inspection", "inspection.kpi", {"estate_id": e})
            for kpi, body, n, d in (("ontime", wo and wo["workorder_kpi"].get("total", {}), "on_time", "due"),
                                    ("firstpass", wo and wo["workorder_kpi"].get("total", {}), "first_pass", "confirmed"),
                                    ("collection", col and col["billing_report_collection"].get("estate", {}),
                                     "collected_fen", "billed_fen"),
                                    ("inspection", ins and ins["inspection_kpi"].get("estate", {}),
                                     "first_rounds_passed", "first_rounds_completed")):
                if body is None:
                    want["kpi:%s:%s" % (kpi, e)] = "—"
                    continue
                n, d = int(body.get(n, 0)), int(body.get(d, 0))
                want["kpi:%s:%s" % (kpi, e)] = pct(n, d) or "—"
                s = sums.setdefault(kpi, [0, 0])
                s[0] += n
                s[1] += d
        for kpi, (n, d) in sums.items():
            want["kpi:" + kpi] = pct(n, d) or "暂无数据"
        return want

    def page(self, driver):
        """data-fig -> text on the page."""
        return driver.execute_script(
            "var o = {}; document.querySelectorAll('[data-fig]').forEach(function (e) {"
            " o[e.getAttribute('data-fig')] = e.textContent.trim(); }); return o;")

    def agree(self, driver, estates, up):
        """Waits until the page shows what the daemons say; fails with the differences."""
        last = {}

        def same():
            want = self.expected(estates, up)
            got = self.page(driver)
            last["diff"] = {k: (v, got.get(k)) for k, v in want.items() if got.get(k) != v}
            return not last["diff"]
        try:
            poll("the board to show the daemons' figures", same, deadline_s=30)
        except AssertionError:
            self.fail("page differs from the daemons (figure: (daemon's, page's)): %s" % last["diff"])
        return self.page(driver)

    def test_board_shows_the_daemons_figures_live(self):
        self.c.start(*DAEMONS)
        tok = json.loads(self.c.pmctl("--json", "token", "create", "board", "--role", "integration").stdout)
        url = tok["url"] + "#token=" + tok["token"]
        # a move-in of two estates, from the import to the keys (a few rows rejected: a queue with work)
        batch = os.path.join(self.c.home, "batch")
        subprocess.run([sys.executable, os.path.join(SOURCE, "deploy/sample/gen.py"), "--estates", "2",
                        "--units", "30", "--seed", "21", "--out", batch], check=True, capture_output=True)
        files = [os.path.join(batch, f) for f in sorted(os.listdir(batch))]
        run = movein.MoveIn({d: self.c.endpoint(d) for d in DAEMONS}, lambda *a: self.c.pmctl(*a, check=False),
                            files, seed=21, workdir=self.c.home).run()
        self.c.pmctl("sync", "--wait", "30")

        d = browser(1366, 768)
        self.drivers.append(d)
        d.get(url)
        self.assertNotIn("token=", d.current_url)  # the token leaves the address bar at once
        got = self.agree(d, ["E01", "E02"], DAEMONS)
        self.assertNotEqual(got["queue:intake:import_rejections"], "0")
        self.assertEqual(got["units:E01"], str(sum(1 for u in run["units"].values() if u["estate"] == "E01")))
        self.assertNotEqual(got["seq:intake"], "0")
        for fig in ("kpi:ontime", "kpi:firstpass", "kpi:collection", "kpi:inspection", "completion:E01"):
            self.assertRegex(got[fig], r"^\d+(\.\d)?%$", fig)  # a move-in happened: every figure has a value
        self.assertIn("近30天", got["kpi:period"])
        title = d.find_element("css selector", "h1").text
        self.assertEqual(title, "集中交付 · 运营看板")
        self.assertEqual(d.find_element("id", "live-text").text, "实时")

        # live: a second import reaches the feed through the event stream, and the figures follow
        path = self.csv(60, "--estates", "1", "--seed", "5")
        subprocess.run(["sed", "-i", "s/^E01,/E03,/", path], check=True)
        self.c.pmctl("import", path)
        poll("the live feed to show E03's units", lambda: "E03/" in d.find_element("id", "feed").text)
        self.c.pmctl("sync", "--wait", "30")
        got = self.agree(d, ["E01", "E02", "E03"], DAEMONS)
        self.assertEqual(got["units:E03"], "60")

        # width: nothing scrolls sideways at the counter's laptop
        self.assertLessEqual(d.execute_script("return document.documentElement.scrollWidth"),
                             d.execute_script("return window.innerWidth"))
        d.save_screenshot(os.path.join(BUILD, "gateway-board.png"))

        # a daemon that stops shows as 离线; the others stay 正常
        self.c.kill("notify")
        poll("notify to show as down", lambda: self.page(d).get("health:notify") == "离线", deadline_s=30)
        got = self.page(d)
        self.assertEqual([got["health:" + x] for x in DAEMONS if x != "notify"], ["正常"] * 5)

        # a phone
        p = browser(390, 844)
        self.drivers.append(p)
        p.get(url)
        poll("the phone's page to show E03", lambda: self.page(p).get("units:E03") == "60")
        self.assertLessEqual(p.execute_script("return document.documentElement.scrollWidth"),
                             p.execute_script("return window.innerWidth"))
        p.save_screenshot(os.path.join(BUILD, "gateway-board-phone.png"))

    def test_board_asks_for_a_token(self):
        self.c.start("gateway")
        st = json.loads(self.c.pmctl("--json", "call", "gateway", "gateway.status").stdout)["gateway_status"]
        d = browser(1366, 768)
        self.drivers.append(d)
        d.get(st["url"] + "#token=pmk_not-a-valid-token-0000000000000000000000000")
        poll("the token form", lambda: d.find_element("id", "login").is_displayed())
        self.assertIn("令牌无效", d.find_element("id", "login-error").text)


if __name__ == "__main__":
    unittest.main(verbosity=2)

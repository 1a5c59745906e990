#!/usr/bin/env python3
"""End to end: intake imports units and owners; billing and notify build their
projections from intake's events; crashes on either side lose nothing and
apply nothing twice."""
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import SOURCE, Client, Cluster, FakeUpstream, generated_protos, poll  # noqa: E402

generated_protos()
from pm.v1 import envelope_pb2 as E  # noqa: E402
from pm.v1 import intake_pb2 as I  # noqa: E402

GEN = os.path.join(SOURCE, "tests/support/gen_units.py")


def make_csv(units, *extra):
    fd, path = tempfile.mkstemp(suffix=".csv", prefix="units.", dir="/tmp")
    os.close(fd)
    subprocess.run([sys.executable, GEN, path, "--units", str(units)] + list(extra), check=True)
    return path


def owner_rows(path):
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f) - 1


class Pipeline(unittest.TestCase):
    def setUp(self):
        self.c = Cluster()
        self.files = []

    def tearDown(self):
        self.c.close()
        for f in self.files:
            os.unlink(f)

    def csv(self, units, *extra):
        p = make_csv(units, *extra)
        self.files.append(p)
        return p

    def last_seq(self, daemon):
        return int(self.c.metric(daemon, "pm_outbox_last_seq"))

    def caught_up(self, daemon, source="intake"):
        want = self.last_seq(source)
        return lambda: self.c.metric(daemon, "pm_consumer_applied_seq", 'source="%s"' % source) == want

    def test_import_reaches_billing_and_notify(self):
        self.c.start("intake", "billing", "notify")
        path = self.csv(300, "--bad")
        r = self.c.pmctl("import", path, check=False)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)  # completed, with rejected rows
        self.assertIn("300 created", r.stdout)
        self.assertIn("2 rejected", r.stdout)
        self.assertRegex(r.stdout, r"line \d+, column 6 \(area_m2\)")
        self.assertRegex(r.stdout, r"line \d+, column 7 \(owner_name\)")
        poll("billing to catch up", self.caught_up("billing"))
        poll("notify to catch up", self.caught_up("notify"))
        self.assertEqual(self.c.metric("billing", "billing_units"), 300)
        self.assertEqual(self.c.metric("notify", "notify_units"), 300)
        self.assertEqual(self.c.metric("notify", "notify_contacts"), owner_rows(path) - 2)
        # re-importing the same file changes nothing
        before = self.last_seq("intake")
        r = self.c.pmctl("import", path, check=False)
        self.assertIn("0 created, 0 updated", r.stdout)
        self.assertEqual(self.last_seq("intake"), before)
        # the rejected rows wait in intake's queue for a fix
        q = self.c.pmctl("queues", "intake")
        self.assertIn("import_rejections (2)", q.stdout)

    def test_late_subscriber_replays(self):
        self.c.start("intake")
        path = self.csv(500)
        self.c.pmctl("import", path)
        self.c.start("billing", "notify")  # started after every event was published
        poll("billing to replay", self.caught_up("billing"))
        poll("notify to replay", self.caught_up("notify"))
        self.assertEqual(self.c.metric("billing", "billing_units"), 500)
        self.assertEqual(self.c.metric("billing", "pm_consumer_applied_total", 'source="intake"'),
                         self.last_seq("intake"))

    def test_consumer_behind_retention_rebuilds_from_snapshot(self):
        self.c.env["PM_GENERAL_MANUAL_CLOCK"] = "true"
        self.c.start("intake", "billing")
        self.c.pmctl("import", self.csv(100))
        poll("billing to catch up", self.caught_up("billing"))
        self.c.kill("billing", signal.SIGTERM)
        self.c.pmctl("import", self.csv(300, "--seed", "11"))  # events billing has not seen
        # a month passes: intake prunes the events billing still needs
        self.c.pmctl("clock", "advance", "31d", check=False)  # billing is down: only intake moves
        poll("intake to prune", lambda: self.c.metric("intake", "pm_outbox_events") == 1)
        self.c.start("billing")
        poll("billing to catch up", self.caught_up("billing"))  # it does: billing is not stranded
        self.assertEqual(self.c.metric("billing", "billing_units"), self.c.metric("intake", "intake_units"))
        self.assertEqual(self.c.metric("billing", "pm_consumer_snapshots_total", 'source="intake"'), 1)
        log = self.c.read("billing.log")
        self.assertEqual(log.count("loading intake's snapshot:"), 1, log)
        self.assertNotIn("stranded", log)
        # and it follows live again
        self.c.pmctl("import", self.csv(50, "--seed", "12"))
        poll("billing to catch up", self.caught_up("billing"))
        self.assertEqual(self.c.metric("billing", "billing_units"), self.c.metric("intake", "intake_units"))

    def test_pmctl_rebuild_reloads_a_projection(self):
        self.c.start("intake", "billing", "notify")
        self.c.pmctl("import", self.csv(200))
        poll("billing to catch up", self.caught_up("billing"))
        r = self.c.pmctl("rebuild", "billing", "--from", "intake")
        self.assertIn("rebuilds its projection of intake", r.stdout)
        self.assertIn("billing follows intake again", r.stdout)
        self.assertEqual(self.c.metric("billing", "billing_units"), 200)
        self.assertEqual(self.c.metric("billing", "pm_consumer_snapshots_total", 'source="intake"'), 1)
        r = self.c.pmctl("rebuild", "billing", "--from", "nosuch", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("it consumes: intake", r.stderr)
        r = self.c.pmctl("rebuild", "billing", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--from", r.stderr)

    def test_fake_upstream_feeds_one_daemon(self):
        """The harness's FakeUpstream plays intake for billing: a daemon is
        tested through its real process without the others."""
        up = FakeUpstream(self.c, "intake")
        try:
            up.emit("intake.unit.registered", unit_id="E01/1/101", estate_id="E01",
                    unit=I.Unit(unit_id="E01/1/101", estate_id="E01", area_cm2=8950))
            self.c.start("billing")
            poll("billing to apply the replayed event", lambda: self.c.metric("billing", "billing_units") == 1)
            up.emit("intake.unit.registered", unit_id="E01/1/102", estate_id="E01",
                    unit=I.Unit(unit_id="E01/1/102", estate_id="E01", area_cm2=7550))
            poll("billing to apply the live event", lambda: self.c.metric("billing", "billing_units") == 2)
            r = self.c.pmctl("call", "billing", "billing.unit.get", '{"unit_id":"E01/1/102"}')
            self.assertIn("75.50 m2", r.stdout)
        finally:
            self.c.close()
            up.close()

    def test_kill_9_mid_import_applies_each_record_once(self):
        self.c.start("intake", "billing", "notify")
        path = self.csv(10000)
        imp = self.c.pmctl_bg("import", path, "--chunk", "100", "--inflight", "2")
        # intake dies in the middle of the import ...
        poll("the import to be under way", lambda: (self.c.metric("intake", "intake_units") or 0) >= 2000)
        self.c.kill("intake")
        print("intake killed with the import %s" % ("running" if imp.poll() is None else "finished"),
              file=sys.stderr)
        # ... and billing dies in the middle of consuming it
        applied = self.c.metric("billing", "pm_consumer_applied_seq", 'source="intake"')
        self.c.kill("billing")
        print("billing killed after applying %s events" % applied, file=sys.stderr)
        self.c.start("intake")  # pmctl retries its chunks with the same ids
        self.assertEqual(imp.wait(timeout=300), 0, self.c.read("pmctl.out"))
        self.c.start("billing")
        poll("billing to catch up", self.caught_up("billing"), deadline_s=120)
        self.c.kill("notify")
        self.c.start("notify")
        poll("notify to catch up", self.caught_up("notify"), deadline_s=120)
        out = self.c.read("pmctl.out")
        self.assertIn("10000 created", out)  # chunks answered before the crash were not applied twice
        rows = owner_rows(path)
        events = self.last_seq("intake")
        self.assertEqual(events, rows)  # one event per row: 10000 registered + co-owner updates
        self.assertEqual(self.c.metric("billing", "billing_units"), 10000)
        self.assertEqual(self.c.metric("notify", "notify_contacts"), rows)
        # the durable count of applied events equals the events published: none twice
        self.assertEqual(self.c.metric("billing", "pm_consumer_applied_total", 'source="intake"'), events)
        self.assertEqual(self.c.metric("notify", "pm_consumer_applied_total", 'source="intake"'), events)
        # and a re-run of the whole import changes nothing
        r = self.c.pmctl("import", path)
        self.assertIn("0 created, 0 updated, %d unchanged" % rows, r.stdout)

    def test_repeated_request_id_applied_once(self):
        self.c.start("intake")
        cl = Client(self.c.endpoint("intake"))
        req = E.Request(id="fixed-id-1", method="intake.import", actor="test")
        b = req.intake_import
        b.batch_id = "manual"
        b.file_name = "manual.csv"
        b.rows.add(line=2, estate_id="E09", estate_name="测试苑", building="1", unit="101", floor="1",
                   area_m2="88.00", owner_name="王五", phone="13800000000", id_number="11010519491231002X")
        first = cl.call(req)
        again = cl.call(req)
        cl.close()
        self.assertEqual(first.status, E.OK)
        self.assertEqual(first.intake_import.created, 1)
        self.assertEqual(again.SerializeToString(), first.SerializeToString())
        self.assertEqual(self.last_seq("intake"), 1)

    def test_bad_input_is_refused_clearly(self):
        self.c.start("intake")
        r = self.c.pmctl("call", "intake", "intake.estate.get", '{"estate_id":"E77"}', check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stdout + r.stderr)
        self.assertIn("E77", r.stdout + r.stderr)
        r = self.c.pmctl("call", "intake", "no.such.method", check=False)
        self.assertNotEqual(r.returncode, 0)
        r = self.c.pmctl("call", "nosuchdaemon", "ops.ping", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nosuchdaemon", r.stderr)
        r = self.c.pmctl("call", "intake", "events.replay", '{"max": "lots"}', check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("max", r.stderr)
        self.assertEqual(self.last_seq("intake"), 0)

    def test_prometheus_scrape_endpoint(self):
        import json
        import urllib.error
        import urllib.request
        self.c.env["PM_INTAKE_METRICS_HTTP"] = "127.0.0.1:0"  # any free port; ops.ping says which
        self.c.start("intake")
        ping = json.loads(self.c.pmctl("--json", "call", "intake", "ops.ping").stdout)
        url = ping["ops_ping"]["metrics_url"]
        self.assertRegex(url, r"^http://127\.0\.0\.1:\d+/metrics$")
        with urllib.request.urlopen(url, timeout=10) as r:
            self.assertEqual(r.status, 200)
            self.assertIn("text/plain", r.headers["Content-Type"])
            body = r.read().decode()
        self.assertRegex(body, r'pm_requests_total\{daemon="intake",method="ops.ping",status="OK"\} [1-9]')
        self.assertIn("# HELP intake_units Units registered", body)
        self.assertIn('intake_units{daemon="intake"} 0', body)
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url.replace("/metrics", "/nope"), timeout=10)
        self.assertEqual(e.exception.code, 404)

    def test_clean_shutdown(self):
        self.c.start("intake", "billing")
        self.assertEqual(self.c.kill("intake", signal.SIGTERM), 0)
        self.assertEqual(self.c.kill("billing", signal.SIGINT), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)

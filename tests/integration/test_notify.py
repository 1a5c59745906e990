#!/usr/bin/env python3
"""notify's real process against real gateways on loopback: an SMTP server
(Debian's python3-aiosmtpd, writing each mail to a Maildir) and an HTTP server
playing the SMS provider (success, 503, 429 with Retry-After, permanent 400,
answers withheld), with FakeUpstream playing intake, inspection, workorder and
billing. Each message is delivered once, even when the provider fails for a
while and notify is killed with SIGKILL mid-batch; quiet hours hold SMS until
the morning on the manual clock; the rate limit holds; permanent errors make
dead letters an operator resends or drops; nothing goes for a settled invoice;
a slow provider never stops notify answering."""
import email
import email.policy
import json
import mailbox
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, Cluster, FakeUpstream, generated_protos, poll  # noqa: E402

generated_protos()
from pm.v1 import billing_pb2 as B  # noqa: E402
from pm.v1 import intake_pb2 as I  # noqa: E402
from pm.v1 import workorder_pb2 as W  # noqa: E402

NIGHT = "2026-12-01T14:00:00Z"  # 22:00 in Shanghai
MORNING = "2026-12-02T00:00:00Z"  # 08:00


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class SmsProvider:
    """An SMS provider on loopback, as its documentation would describe it:
    POST JSON, answer 200 {"id": ...}; it honours Idempotency-Key (a key it
    took before is answered with the first id and delivered once). mode():
    ok | fail (503) | busy (429, Retry-After) | hold (no answer until
    release()) | garbage (200 without the JSON); refuse: numbers answered 400."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []      # (monotonic time, key, to, text, status)
        self.delivered = {}     # key -> (id, to, text)
        self.duplicates = 0     # requests for a key already delivered
        self.refuse = set()
        self.mode_ = "ok"
        self.delay = 0.0
        self.released = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key", "")
                status, answer, extra = provider.answer(key, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # notify killed mid-request: its connection is gone, nothing to report

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/sms" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def mode(self, m, delay=0.0):
        with self.lock:
            self.mode_ = m
            self.delay = delay
            if m != "hold":
                self.released.set()
            else:
                self.released.clear()

    def release(self):
        self.mode("ok")

    def answer(self, key, body):
        with self.lock:
            mode, delay = self.mode_, self.delay
        if mode == "hold":
            self.released.wait(60)
        if delay:
            time.sleep(delay)  # a provider that takes its time (the test's, not notify's)
        with self.lock:
            mode = self.mode_
            if body["to"] in self.refuse:
                status, answer, extra = 400, {"message": "invalid number %s" % body["to"]}, {}
            elif mode == "fail":
                status, answer, extra = 503, {"error": "maintenance"}, {}
            elif mode == "busy":
                status, answer, extra = 429, {"error": "too many requests"}, {"Retry-After": "1"}
            elif mode == "garbage":
                status, answer, extra = 200, {"ok": True}, {}
            elif key in self.delivered:
                self.duplicates += 1
                status, answer, extra = 200, {"id": self.delivered[key][0]}, {}
            else:
                pid = "P%06d" % (len(self.delivered) + 1)
                self.delivered[key] = (pid, body["to"], body["text"])
                status, answer, extra = 200, {"id": pid}, {}
            self.requests.append((time.monotonic(), key, body["to"], body["text"], status))
            return status, answer, extra

    def count(self, status=None):
        with self.lock:
            return sum(1 for r in self.requests if status is None or r[4] == status)

    def texts(self):
        with self.lock:
            return [v[2] for v in self.delivered.values()]

    def close(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


class SmtpServer:
    """Debian's aiosmtpd on a free loopback port, each mail into a Maildir."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="pmmail.", dir="/tmp")
        self.maildir = os.path.join(self.dir, "Maildir")
        self.proc = None
        self.start()

    def start(self):
        self.log = open(os.path.join(self.dir, "smtpd.log"), "ab")
        self.proc = subprocess.Popen(["/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:%d" % self.port,
                                      "-c", "aiosmtpd.handlers.Mailbox", self.maildir],
                                     stdout=self.log, stderr=self.log)
        poll("the SMTP server to listen", self.listening)

    def listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None
            self.log.close()

    def mails(self):
        if not os.path.isdir(self.maildir):
            return []
        box = mailbox.Maildir(self.maildir, factory=None, create=False)
        out = []
        for key in box.keys():
            with box.get_file(key) as f:
                out.append(email.message_from_binary_file(f, policy=email.policy.default))
        return out

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def owner(name, phone, mail=""):
    return I.Owner(name=name, phone=phone, email=mail, owner_key="k" + phone)


def unit_event(up, unit_id, *owners):
    b, u = unit_id.split("/")[1].split("-")
    up.emit("intake.unit.registered", unit_id=unit_id, estate_id="E01",
            unit=I.Unit(unit_id=unit_id, estate_id="E01", estate_name="翠湖花园", building=b, unit=u, owners=owners))


def notice_event(up, unit_id, *owners):
    up.emit("intake.notice.requested", unit_id=unit_id, estate_id="E01",
            notice=I.Notice(notice_id="N-1", unit_id=unit_id, estate_id="E01", owners=owners, window="12月5日至12月20日",
                            place="物业服务中心", bring=["身份证", "购房合同"], fees_note="物业费一年"))


class Notify(unittest.TestCase):
    def setUp(self):
        self.c = Cluster()
        self.sms = SmsProvider()
        self.smtp = None
        self.ups = {n: FakeUpstream(self.c, n) for n in ("intake", "inspection", "workorder", "billing")}
        self.c.env.update({
            "PM_NOTIFY_SMS_GATEWAY": "http-sms",
            "PM_NOTIFY_SMS_URL": self.sms.url,
            "PM_NOTIFY_SMS_TIMEOUT": "20s",
            "PM_NOTIFY_SMS_RATE": "0",
            "PM_NOTIFY_RETRY_BASE": "200ms",
            "PM_NOTIFY_RETRY_MAX": "1s",
            "PM_NOTIFY_SMS_DAILY_CAP": "0",
            "PM_NOTIFY_QUIET_HOURS": "none",  # the wall clock may be at night; the quiet-hours tests set it
        })

    def tearDown(self):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result and any(t is self for t, _ in result.failures + result.errors):
            path = os.path.join(self.c.home, "notify.log")  # what notify said, for the failure's reader
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    print("--- notify.log (last lines) ---\n" + "".join(f.readlines()[-40:]), file=sys.stderr)
        self.c.close()
        for up in self.ups.values():
            up.close()
        self.sms.close()
        if self.smtp:
            self.smtp.close()

    def with_smtp(self):
        self.smtp = SmtpServer()
        self.c.env.update({"PM_NOTIFY_EMAIL_GATEWAY": "smtp", "PM_NOTIFY_SMTP_URL": "smtp://127.0.0.1:%d" % self.smtp.port,
                           "PM_NOTIFY_EMAIL_RATE": "0"})

    def unit_get(self, unit_id):
        r = self.c.pmctl("--json", "call", "notify", "notify.unit.get", json.dumps({"unit_id": unit_id}), check=False)
        return json.loads(r.stdout).get("notify_unit_get", {}) if r.returncode == 0 else {}

    def states(self, unit_id, template=None, channel=None):
        return [m["state"] for m in self.unit_get(unit_id).get("messages", [])
                if (not template or m["template"] == template) and (not channel or m["channel"] == channel)]

    def metric(self, name, labels=""):
        return self.c.metric("notify", name, labels) or 0

    def events(self, prefix):
        r = self.c.pmctl("events", "notify", prefix)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def queues(self):
        r = self.c.pmctl("--json", "queues", "notify")
        out = {}
        for q in json.loads(r.stdout).get("queues", []):
            q.setdefault("count", 0)
            q.setdefault("items", [])
            out[q["name"]] = q
        return out

    def clock(self, to):
        self.c.pmctl("call", "notify", "ops.clock", json.dumps({"set_to": to}))

    # --- the tests ------------------------------------------------------------------------

    def test_sms_and_email_reach_real_gateways_once(self):
        self.with_smtp()
        self.c.start("notify")
        up = self.ups["intake"]
        zhang, li = owner("张伟", "13812345678", "zhang.wei@example.com"), owner("李娜", "13987654321")
        unit_event(up, "E01/1-101", zhang, li)
        notice_event(up, "E01/1-101", zhang, li)
        poll("both SMS at the provider", lambda: len(self.sms.delivered) == 2)
        poll("the email in the mailbox", lambda: len(self.smtp.mails()) == 1)
        mail = self.smtp.mails()[0]
        self.assertEqual(str(mail["Subject"]), "入住通知书：翠湖花园1栋101室")
        self.assertIn("张伟", str(mail["To"]))
        self.assertIn("zhang.wei@example.com", str(mail["To"]))
        self.assertIn("您购买的翠湖花园1栋101室已具备交付条件", mail.get_body().get_content())
        self.assertRegex(str(mail["Message-ID"]), r"^<[0-9a-f]{16}\.M\d{10}@pm-notify>$")
        texts = self.sms.texts()
        self.assertTrue(any("张伟您好！您的房屋翠湖花园1栋101室已具备交付条件" in t for t in texts), texts)
        poll("all three SENT", lambda: sorted(self.states("E01/1-101")) == ["SENT"] * 3)
        sent = self.events("notify.message.sent")
        self.assertEqual(len(sent), 3)
        self.assertEqual({e["message"]["notice_id"] for e in sent}, {"N-1"})
        self.assertEqual({e["message"]["recipient"] for e in sent if e["message"]["channel"] == "sms"},
                         {"138****5678", "139****4321"})
        self.assertEqual(self.sms.duplicates, 0)
        self.assertEqual(self.metric("notify_skipped_total", 'reason="no_email"'), 1)  # 李娜 has no email

    def test_gateway_down_then_sigkill_mid_batch_delivers_each_once(self):
        """The provider fails for a while, then answers slowly; notify is
        killed with SIGKILL while messages are at the provider; after the
        restart every message is delivered, each once."""
        self.c.env.update({"PM_NOTIFY_SMS_CONCURRENCY": "4", "PM_NOTIFY_EMAIL_GATEWAY": "file"})
        self.sms.mode("fail")
        self.c.start("notify")
        up = self.ups["intake"]
        n = 40
        for i in range(n):
            uid = "E01/2-%03d" % (i + 1)
            o = owner("业主%d" % i, "1390000%04d" % i)
            unit_event(up, uid, o)
            notice_event(up, uid, o)
        poll("the provider to fail a while", lambda: self.sms.count(503) >= 12)
        self.assertEqual(len(self.sms.delivered), 0)
        self.sms.mode("ok", delay=0.05)
        poll("a third delivered", lambda: len(self.sms.delivered) >= n // 3)
        self.c.kill("notify")  # SIGKILL, messages at the provider
        at_kill = len(self.sms.delivered)
        self.assertLess(at_kill, n, "killed after the batch, not in its middle")
        self.c.start("notify")
        poll("all delivered", lambda: len(self.sms.delivered) == n, deadline_s=120)
        poll("all SENT in notify", lambda: self.metric("notify_sent_total", 'channel="sms"') == n)
        # each message once at the provider (a resend after the kill carries the same key)
        self.assertEqual(len({v[1] for v in self.sms.delivered.values()}), n)
        self.assertLessEqual(self.sms.duplicates, 4 + 1, "more resends than one in-flight batch")
        # and one sent event per message, never two
        sent = self.events("notify.message.sent")
        ids = [e["message"]["message_id"] for e in sent if e["message"]["channel"] == "sms"]
        self.assertEqual(len(ids), n)
        self.assertEqual(len(set(ids)), n)
        print("kill -9 with %d of %d delivered; %d resent with the same key (provider deduplicated)"
              % (at_kill, n, self.sms.duplicates), file=sys.stderr)

    def test_smtp_down_for_a_while(self):
        self.c.env["PM_NOTIFY_MAX_ATTEMPTS"] = "100"
        self.with_smtp()
        self.smtp.stop()
        self.c.start("notify")
        up = self.ups["intake"]
        o = owner("张伟", "13812345678", "zhang.wei@example.com")
        unit_event(up, "E01/1-101", o)
        notice_event(up, "E01/1-101", o)
        poll("the email to be retried", lambda: "RETRYING" in self.states("E01/1-101", channel="email"))
        reason = [m for m in self.unit_get("E01/1-101")["messages"] if m["channel"] == "email"][0]["reason"]
        self.assertIn("the mail server cannot be reached", reason)
        self.smtp.start()
        poll("the email delivered", lambda: len(self.smtp.mails()) == 1)
        poll("SENT", lambda: self.states("E01/1-101", channel="email") == ["SENT"])
        self.assertEqual(len(self.smtp.mails()), 1)

    def test_quiet_hours_hold_sms_until_morning(self):
        self.c.env.update({"PM_GENERAL_MANUAL_CLOCK": "true", "PM_NOTIFY_QUIET_HOURS": "21:00-08:00"})
        self.c.start("notify")
        self.clock(NIGHT)
        up = self.ups["intake"]
        o = owner("张伟", "13812345678")
        unit_event(up, "E01/1-101", o)
        notice_event(up, "E01/1-101", o)
        poll("the notice deferred", lambda: self.states("E01/1-101", "move_in_notice") == ["DEFERRED"])
        m = self.unit_get("E01/1-101")["messages"][0]
        self.assertIn("quiet hours 21:00-08:00 (Asia/Shanghai): goes at 12月2日 08:00", m["reason"])
        # an urgent staff alert goes at night: the lane works, the notice waits
        self.ups["workorder"].emit("workorder.sla.breached", unit_id="E01/1-101", estate_id="E01",
                                   sla=W.SlaAlert(order_id="WO-E01-000009", unit_id="E01/1-101", estate_id="E01",
                                                  deadline="complete", team_lead="李明", technician="王建国",
                                                  category="water"))
        poll("the SLA breach at the provider", lambda: len(self.sms.delivered) == 1)
        self.assertIn("【SLA超时】工单WO-E01-000009", self.sms.texts()[0])
        self.clock("2026-12-01T23:59:00Z")  # 07:59
        self.c.pmctl("call", "notify", "ops.ping")
        self.assertEqual(self.states("E01/1-101", "move_in_notice"), ["DEFERRED"])
        self.assertEqual(len(self.sms.delivered), 1)
        self.clock(MORNING)
        poll("the notice sent at 08:00", lambda: len(self.sms.delivered) == 2)
        poll("SENT", lambda: self.states("E01/1-101", "move_in_notice") == ["SENT"])

    def test_rate_limit_holds(self):
        rate, burst, n = 10, 2, 25
        self.c.env.update({"PM_NOTIFY_SMS_RATE": str(rate), "PM_NOTIFY_SMS_BURST": str(burst)})
        self.c.start("notify")
        up = self.ups["intake"]
        for i in range(n):
            uid = "E01/3-%03d" % (i + 1)
            o = owner("业主%d" % i, "1370000%04d" % i)
            unit_event(up, uid, o)
            notice_event(up, uid, o)
        poll("all at the provider", lambda: len(self.sms.delivered) == n)
        times = sorted(r[0] for r in self.sms.requests)
        # The bucket's promise, which a loaded machine cannot break: n messages
        # take at least (n - burst) / rate seconds from first to last. (Counting
        # arrivals per second at the provider would test the machine's
        # scheduler: a busy provider thread bunches them.)
        self.assertGreaterEqual(times[-1] - times[0], (n - burst) / rate - 0.3)
        self.assertGreater(self.metric("notify_rate_limited_total", 'channel="sms"'), 0)

    def test_dead_letters_resent_or_dropped_by_hand(self):
        self.c.env["PM_NOTIFY_MAX_ATTEMPTS"] = "2"
        self.sms.refuse = {"13900000400", "13900000401"}
        self.c.start("notify")
        up = self.ups["intake"]
        for uid, phone in (("E01/4-101", "13900000400"), ("E01/4-102", "13900000401")):
            o = owner("王五", phone)
            unit_event(up, uid, o)
            notice_event(up, uid, o)
        poll("two dead letters", lambda: self.queues()["dead_letters"]["count"] == 2)
        dead = self.queues()["dead_letters"]["items"]
        self.assertIn("the SMS provider refused it (400): invalid number 13900000400", dead[0]["reason"])
        self.assertIn("pmctl notify retry", dead[0]["reason"])
        first, second = dead[0]["key"], dead[1]["key"]
        r = self.c.pmctl("notify", "show", first)
        self.assertIn("FAILED", r.stdout)
        self.assertIn("王五您好！您的房屋翠湖花园4栋101室已具备交付条件", r.stdout)
        self.assertEqual(len(self.events("notify.message.failed")), 2)
        # the provider fixed its number list: resend the first, give up the second
        self.sms.refuse = set()
        r = self.c.pmctl("notify", "retry", first)
        self.assertIn("queued again", r.stdout)
        poll("resent and taken", lambda: self.states("E01/4-101") == ["SENT"])
        r = self.c.pmctl("notify", "drop", second, "--reason", "owner moved abroad")
        self.assertIn("DROPPED", r.stdout)
        self.assertEqual(self.queues()["dead_letters"]["count"], 0)
        r = self.c.pmctl("notify", "drop", second, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("is DROPPED already", r.stderr)
        # an answer the provider does not document: retried, then a dead letter that says so
        self.sms.mode("garbage")
        o = owner("赵六", "13900000402")
        unit_event(up, "E01/4-103", o)
        notice_event(up, "E01/4-103", o)
        poll("a dead letter for the odd answer", lambda: self.queues()["dead_letters"]["count"] == 1)
        self.assertIn("without the documented JSON", self.queues()["dead_letters"]["items"][0]["reason"])

    def test_nothing_sent_for_a_settled_invoice(self):
        self.c.env.update({"PM_GENERAL_MANUAL_CLOCK": "true", "PM_NOTIFY_QUIET_HOURS": "21:00-08:00"})
        self.c.start("notify")
        self.clock(NIGHT)
        o = owner("张伟", "13812345678")
        unit_event(self.ups["intake"], "E01/1-101", o)
        bill = self.ups["billing"]

        def invoice(type_, inv, state):
            bill.emit(type_, unit_id="E01/1-101", estate_id="E01",
                      invoice=B.Invoice(invoice_id=inv, unit_id="E01/1-101", estate_id="E01", kind="move_in",
                                        total_fen=324000, open_fen=0 if state == B.SETTLED else 324000, state=state))

        invoice("billing.invoice.issued", "INV-E01-000001", B.ISSUED)
        bill.emit("billing.dunning.step", unit_id="E01/1-101", estate_id="E01",
                  dunning=B.DunningStep(invoice_id="INV-E01-000001", unit_id="E01/1-101", estate_id="E01", step="T-7",
                                        action="message", open_fen=324000))
        invoice("billing.invoice.issued", "INV-E01-000002", B.ISSUED)  # another bill, still open in the morning
        poll("three SMS deferred", lambda: self.states("E01/1-101", channel="sms").count("DEFERRED") == 3)
        invoice("billing.invoice.settled", "INV-E01-000001", B.SETTLED)
        poll("its reminders dropped", lambda: self.metric("notify_dropped_total", 'reason="settled"') == 2)
        self.clock(MORNING)
        poll("the open bill sent in the morning", lambda: len(self.sms.delivered) == 1)
        self.assertIn("INV-E01-000002", self.sms.texts()[0])
        poll("nothing left to send", lambda: self.metric("notify_backlog", 'channel="sms"') == 0)
        self.assertFalse([t for t in self.sms.texts() if "INV-E01-000001" in t])
        self.assertEqual(self.sms.count(), 1)

    def test_slow_gateway_never_blocks_notify(self):
        self.sms.mode("hold")
        self.c.start("notify")
        up = self.ups["intake"]
        for i in range(5):
            o = owner("业主%d" % i, "1360000%04d" % i)
            unit_event(up, "E01/5-%03d" % i, o)
            notice_event(up, "E01/5-%03d" % i, o)
        poll("messages at the provider, unanswered", lambda: self.queues()["sending"]["count"] == 5)
        # notify answers while every send hangs: reads, its queues, a write
        self.assertEqual(self.states("E01/5-000", channel="sms"), ["SENDING"])
        r = self.c.pmctl("notify", "optout", "sms", "13600009999")
        self.assertIn("opted out of sms", r.stdout)
        self.assertEqual(len(self.sms.delivered), 0)
        self.sms.release()
        poll("all delivered once released", lambda: self.metric("notify_sent_total", 'channel="sms"') == 5)

    def test_bad_files_stop_notify_with_file_and_line(self):
        d = tempfile.mkdtemp(prefix="pmrules.", dir="/tmp")
        try:
            rules = os.path.join(d, "rules.conf")
            with open(rules, "w") as f:
                f.write("# mine\nbilling.invoice.issue invoice_issued owners sms\n")
            env = dict(self.c.env, PM_NOTIFY_RULES=rules)
            p = subprocess.run([os.path.join(BUILD, "services/notify/pm-notify")], env=env, capture_output=True,
                               text=True, timeout=30)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("%s:2: unknown event type 'billing.invoice.issue'" % rules, p.stderr)
            templates = os.path.join(d, "templates.conf")
            with open(templates, "w") as f:
                f.write("[move_in_notice.sms]\ntext = {owner}您好\n")
            env = dict(self.c.env, PM_NOTIFY_TEMPLATES=templates)
            p = subprocess.run([os.path.join(BUILD, "services/notify/pm-notify")], env=env, capture_output=True,
                               text=True, timeout=30)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("%s:2: [move_in_notice.sms] text: unknown variable {owner}" % templates, p.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""Deploying for real: the systemd units pass `systemd-analyze verify` without a
word, and a daemon speaks systemd's notify protocol (READY=1 once serving,
WATCHDOG=1 from its loop, STOPPING=1 on SIGTERM), checked on a real
NOTIFY_SOCKET the way systemd listens."""
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, SOURCE, Cluster, poll  # noqa: E402

UNITS = os.path.join(SOURCE, "deploy/systemd")


class Deploy(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pmd.", dir="/tmp")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
    def test_units_verify_cleanly(self):
        units = sorted(glob.glob(os.path.join(UNITS, "*.service")))
        self.assertGreaterEqual(len(units), 5)
        paths = []
        for u in units:  # the binaries as installed are the build tree's here
            text = open(u, encoding="utf-8").read()
            name = os.path.basename(u)[:-len(".service")].replace("pm-", "", 1)
            binary = os.path.join(BUILD, "services", name, "pm-" + name)
            self.assertTrue(os.path.exists(binary), binary)
            self.assertIn("Type=notify", text)
            self.assertIn("StateDirectory=", text)
            self.assertIn("Restart=on-failure", text)
            out = os.path.join(self.tmp, os.path.basename(u))
            with open(out, "w", encoding="utf-8") as f:
                f.write(text.replace("/usr/local/bin/pm-" + name, binary))
            paths.append(out)
        shutil.copy(os.path.join(UNITS, "pm.target"), self.tmp)
        r = subprocess.run(["systemd-analyze", "verify", "--man=no"] + paths + [os.path.join(self.tmp, "pm.target")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.strip(), "", "systemd-analyze said:\n" + r.stderr)

    def test_daemon_speaks_the_notify_protocol(self):
        sock_path = os.path.join(self.tmp, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(sock_path)
        s.settimeout(0.2)
        env = dict(os.environ, PM_HOME=os.path.join(self.tmp, "home"), NOTIFY_SOCKET=sock_path,
                   WATCHDOG_USEC="200000")
        p = subprocess.Popen([os.path.join(BUILD, "services/billing/pm-billing")], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        got = []

        def wait_for(word):
            end = time.monotonic() + 30
            while time.monotonic() < end:
                try:
                    msg = s.recv(4096).decode()
                except socket.timeout:
                    continue
                got.append(msg)
                if word in msg.split("\n"):
                    return msg
            self.fail("no %s from the daemon; it sent %r" % (word, got))

        try:
            ready = wait_for("READY=1")
            self.assertIn("MAINPID=%d" % p.pid, ready)
            self.assertIn("STATUS=billing: serving", ready)
            wait_for("WATCHDOG=1")  # petted from its loop, twice per WatchdogSec
            p.send_signal(signal.SIGTERM)
            wait_for("STOPPING=1")
            self.assertEqual(p.wait(timeout=30), 0)
        finally:
            if p.poll() is None:
                p.kill()
            s.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Curve(unittest.TestCase):
    """Across hosts: tcp with CurveZMQ. Keys from `pmctl keys`; intake and
    billing serve CURVE and admit only the allow-listed keys; pmctl imports
    and follows events through CURVE; a plain client gets nothing."""

    def setUp(self):
        self.c = Cluster()

    def tearDown(self):
        self.c.close()

    def keys(self, name):
        r = self.c.pmctl("--json", "keys", name, "--dir", os.path.join(self.c.home, "keys"))
        import json
        return json.loads(r.stdout)

    def test_daemons_and_pmctl_over_curve(self):
        k = {n: self.keys(n) for n in ("intake", "billing", "pmctl")}
        allow = os.path.join(self.c.home, "allow")
        with open(allow, "w") as f:
            f.write("# who may talk to the daemons\n")
            for n in ("billing", "pmctl"):
                f.write("%s %s\n" % (k[n]["public_key"], n))
        conf = ["[general]", "curve_allow = " + allow]
        for n in ("intake", "billing"):
            conf += ["[%s]" % n, "command = tcp://127.0.0.1:%d" % free_port(),
                     "events = tcp://127.0.0.1:%d" % free_port(), "data = %s/%s" % (self.c.home, n),
                     "curve_secret_file = " + k[n]["secret_file"], "curve_public_key = " + k[n]["public_key"]]
            self.assertTrue(k[n]["secret_file"].endswith("/%s.curve" % n))  # apart from intake's intake.key
        for n in ("inspection", "notify"):  # intake's other upstreams: named, not started here
            conf += ["[%s]" % n, "command = tcp://127.0.0.1:%d" % free_port(),
                     "events = tcp://127.0.0.1:%d" % free_port(), "data = %s/%s" % (self.c.home, n)]
        conf += ["[pmctl]", "curve_secret_file = " + k["pmctl"]["secret_file"]]
        path = os.path.join(self.c.home, "curve.conf")
        with open(path, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.c.env["PM_CONFIG"] = path
        self.c.start("intake", "billing")
        gen = os.path.join(SOURCE, "tests/support/gen_units.py")
        csv_path = os.path.join(self.c.home, "units.csv")
        subprocess.run([sys.executable, gen, csv_path, "--units", "50"], check=True)
        r = self.c.pmctl("import", csv_path)
        self.assertIn("50 created", r.stdout)
        poll("billing to catch up over CURVE", lambda: self.c.metric("billing", "billing_units") == 50)
        ev = self.c.pmctl("events", "intake", "intake.unit.registered")
        self.assertEqual(len(ev.stdout.strip().splitlines()), 50)
        self.assertGreaterEqual(self.c.metric("intake", "pm_curve_clients_admitted"), 2)
        # pmctl without a key pair of its own is refused before it sends anything
        conf2 = [line for line in conf if not line.startswith("curve_secret_file = " + k["pmctl"]["secret_file"])]
        path2 = os.path.join(self.c.home, "nokey.conf")
        with open(path2, "w") as f:
            f.write("\n".join(conf2) + "\n")
        env = dict(self.c.env, PM_CONFIG=path2)
        r = subprocess.run([os.path.join(BUILD, "tools/pmctl/pmctl"), "--timeout", "1000", "ping", "intake"],
                           env=env, capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no key pair of its own", r.stderr)
        # a plain ZMTP client, and one whose key is not on the allow-list, get nothing
        import zmq
        ctx = zmq.Context()
        plain = ctx.socket(zmq.DEALER)
        plain.setsockopt(zmq.LINGER, 0)
        plain.connect(conf[3].split(" = ")[1])
        plain.send_multipart([b"", b"\x12\x08ops.ping"])
        stranger = ctx.socket(zmq.DEALER)
        stranger.setsockopt(zmq.LINGER, 0)
        spub, ssec = zmq.curve_keypair()
        stranger.curve_secretkey, stranger.curve_publickey = ssec, spub
        stranger.curve_serverkey = k["intake"]["public_key"].encode()
        stranger.connect(conf[3].split(" = ")[1])
        stranger.send_multipart([b"", b"\x12\x08ops.ping"])
        poll("the stranger to be refused", lambda: (self.c.metric("intake", "pm_curve_clients_refused") or 0) >= 1)
        self.assertEqual(plain.poll(200), 0)
        self.assertEqual(stranger.poll(200), 0)
        plain.close()
        stranger.close()
        ctx.term()


class Backup(unittest.TestCase):
    """The README's operations section: a daemon's LMDB is copied while it
    runs (mdb_copy -c, a consistent snapshot), and a daemon started on the
    copy serves what was committed before it."""

    def setUp(self):
        self.c = Cluster()
        self.other = None

    def tearDown(self):
        self.c.close()
        if self.other:
            self.other.close()

    @unittest.skipUnless(shutil.which("mdb_copy"), "mdb_copy (lmdb-utils) is not installed")
    def test_backup_while_running_and_restore(self):
        self.c.start("intake")
        gen = os.path.join(SOURCE, "tests/support/gen_units.py")
        csv_path = os.path.join(self.c.home, "units.csv")
        subprocess.run([sys.executable, gen, csv_path, "--units", "300"], check=True)
        self.c.pmctl("import", csv_path)
        before = self.c.metric("intake", "intake_units")
        seq = self.c.metric("intake", "pm_outbox_last_seq")
        backup = os.path.join(self.c.home, "backup")
        os.makedirs(backup)
        r = subprocess.run(["mdb_copy", "-c", os.path.join(self.c.home, "intake"), backup],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        # restore: a new home with the copy as intake's data and the same sealing key
        self.other = Cluster()
        shutil.copytree(backup, os.path.join(self.other.home, "intake"))
        shutil.copytree(os.path.join(self.c.home, "keys"), os.path.join(self.other.home, "keys"))
        self.other.start("intake")
        self.assertEqual(self.other.metric("intake", "intake_units"), before)
        self.assertEqual(self.other.metric("intake", "pm_outbox_last_seq"), seq)
        # and it goes on from there: the same file again changes nothing
        r = self.other.pmctl("import", csv_path)
        self.assertIn("0 created", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)

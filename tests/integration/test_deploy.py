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

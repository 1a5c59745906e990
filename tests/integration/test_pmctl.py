#!/usr/bin/env python3
"""The operator CLI against real daemons: what an operator sees from pmctl
import (spreadsheet-style files, bad rows, bad headers, re-runs), call, events
(replay, prefix, --follow), clock, metrics, queues, ping and sync.

The CSV files are written by hand, as bytes where the encoding matters."""
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, SOURCE, Cluster, poll  # noqa: E402

DAEMONS = ["intake", "inspection", "workorder", "billing", "notify", "gateway"]
HEADER = "estate_id,estate_name,building,unit,floor,area_m2,owner_name,phone,email,id_number"
DAY_MS = 86400 * 1000
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def resident_id(n):
    """A valid 18-character resident ID number: 17 digits + ISO 7064 check character."""
    body = "11010519800101%03d" % n
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, WEIGHTS)) % 11]


def plain_rows(rows):
    """Data rows with the standard header: rows are (unit, owner_name, phone), estate E05, building 1."""
    lines = [HEADER] + ["E05,和光里,1,%s,1,88.00,%s,%s,,%s" % (u, name, phone, resident_id(i))
                        for i, (u, name, phone) in enumerate(rows)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def rejections(out):
    """{line: text} of the '  line N...' lines of a text import report."""
    return {int(m.group(1)): m.group(0) for m in re.finditer(r"^  line (\d+)\b.*$", out, re.M)}


class PmctlCase(unittest.TestCase):
    """A cluster in a temp dir and a temp dir for the CSV files."""

    def setUp(self):
        self.c = Cluster()
        self.dir = tempfile.mkdtemp(prefix="pmctl.", dir="/tmp")
        self.bg = []

    def tearDown(self):
        for p in self.bg:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            for f in (p.stdout, p.stderr):
                if f and not f.closed:
                    f.close()
        self.c.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def run_pmctl(self, *args, rc=0):
        r = self.c.pmctl(*args, check=False)
        self.assertEqual(r.returncode, rc, "pmctl %s\nstdout: %s\nstderr: %s" % (" ".join(args), r.stdout,
                                                                                  r.stderr))
        return r

    def unit(self, unit_id):
        """intake.unit.get as pmctl --json shows it: the reply's unit, or None when NOT_FOUND.
        Each owner's owner_key (the keyed hash of the ID number) is checked and left out."""
        r = self.c.pmctl("--json", "call", "intake", "intake.unit.get", json.dumps({"unit_id": unit_id}),
                         check=False)
        if r.returncode == 1 and "NOT_FOUND" in r.stdout:
            return None
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        u = json.loads(r.stdout)["intake_unit_get"]["unit"]
        for o in u.get("owners", []):
            self.assertRegex(o.pop("owner_key"), r"^[0-9a-f]{32}$")
        return u

    SMALL = ("intake", "billing", "inspection", "workorder", "notify")

    def small_config(self):
        """A config naming only the five domain daemons (sections copied from deploy/pm.conf: each
        one's upstreams are among them), used by the daemons and pmctl alike: so ping and sync with
        no names mean those five, without the gateway."""
        with open(os.path.join(SOURCE, "deploy/pm.conf"), encoding="utf-8") as f:
            text = f.read()
        keep, out = True, []
        for line in text.splitlines():
            m = re.match(r"\s*\[(\w+)\]", line)
            if m:
                keep = m.group(1) in ("general",) + self.SMALL
            if keep:
                out.append(line)
        path = os.path.join(self.c.home, "small.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(out) + "\n")
        self.c.env["PM_CONFIG"] = path


# --- import ---------------------------------------------------------------------------------

# Excel's "CSV UTF-8" on Windows: a BOM and CRLF; the columns in the developer's order
# with an extra one (note); estate_name quoted because of its comma; a doubled quote;
# a note running over two lines (record on lines 4-5); empty emails.
EXCEL_HEADER = "unit,note,owner_name,phone,email,estate_name,id_number,area_m2,floor,building,estate_id"
EXCEL_ROWS = [
    '101,,王一,13800000001,,"翠湖花园, 一期",%s,88.50,1,1,E01' % resident_id(1),
    '102,"nickname ""小四""","李""小四""",13800000002,,"翠湖花园, 一期",%s,90,1,1,E01' % resident_id(2),
    '201,"keys at the desk\r\nsecond line",张三,13800000003,,"翠湖花园, 一期",%s,%s,2,2,E01'
    % (resident_id(3), "{area}"),
    '202,,赵六,13800000004,zhao@example.com,"翠湖花园, 一期",%s,77.00,2,2,E01' % resident_id(4),
]


def excel_file(area_201="100.5"):
    text = "\r\n".join([EXCEL_HEADER] + EXCEL_ROWS).replace("{area}", area_201) + "\r\n"
    return b"\xef\xbb\xbf" + text.encode("utf-8")


# Rows wrong in five ways, in a file whose columns are not in the standard order
# (area_m2 is column 5, owner_name column 4, floor column 6).
BAD_HEADER = "estate_id,building,unit,owner_name,area_m2,floor,phone,id_number,estate_name,note"


def bad_file():
    lines = [
        BAD_HEADER,                                                                    # 1
        "E02,1,101,王一,88.00,1,13900000001,%s,金桂园,ok" % resident_id(11),            # 2 good
        "E02,1,102,王二,八十九,1,13900000002,%s,金桂园,area" % resident_id(12),         # 3 area
        'E02,1,103,,90.00,1,13900000003,%s,金桂园,"two\nlines"' % resident_id(13),     # 4-5 no owner
        "E02,1,104,王四,91.00,1,13900000004,%s,金桂园,ok" % resident_id(14),            # 6 good
        "E02,1,105,王五,92.00",                                                         # 7 short
        "E02,1,106,\x00GBK\x00,93.00,1,13900000006,%s,金桂园,gbk" % resident_id(16),    # 8 GBK name
        "E02,1,107,王七,94.00,1,13900000007,%s,金桂园,ok" % resident_id(17),            # 9 good
        'E02,1,108,王八,95.00,1,13900000008,%s,"金桂园,open' % resident_id(18),         # 10 quote
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    return data.replace(b"\x00GBK\x00", b"\xd5\xc5\xce\xb0")  # 张伟 in GBK


BAD_GOOD_UNITS = ["E02/1/101", "E02/1/104", "E02/1/107"]
BAD_REJECTED_UNITS = ["E02/1/102", "E02/1/103", "E02/1/105", "E02/1/106", "E02/1/108"]


class Import(PmctlCase):
    def setUp(self):
        super().setUp()
        self.c.start("intake")

    def test_spreadsheet_file_bom_crlf_reordered_quoted_multiline(self):
        path = self.write("excel.csv", excel_file())
        r = self.run_pmctl("import", path)
        self.assertIn("4 created, 0 updated, 0 unchanged, 0 rejected", r.stdout)
        u = self.unit("E01/1/101")  # ESTATE/BUILDING/UNIT, whatever the column order
        self.assertEqual((u["estate_id"], u["building"], u["unit"], u["floor"], u["area_cm2"]),
                         ("E01", "1", "101", 1, 8850))
        self.assertEqual(u["estate_name"], "翠湖花园, 一期")  # quoted comma; no BOM in the first column
        self.assertEqual(u["owners"], [{"name": "王一", "phone": "13800000001"}])  # empty email: none
        self.assertEqual(self.unit("E01/1/102")["owners"][0]["name"], '李"小四"')  # doubled quote
        u = self.unit("E01/2/201")  # the record that spans lines 4-5
        self.assertEqual((u["owners"][0]["name"], u["area_cm2"], u["floor"]), ("张三", 10050, 2))
        u = self.unit("E01/2/202")  # the row after it, on line 6; no '\r' left on the last column
        self.assertEqual(u["estate_id"], "E01")
        self.assertEqual(u["owners"][0], {"name": "赵六", "phone": "13800000004", "email": "zhao@example.com"})
        # the same file with the multi-line record's area mistyped: reported on the line it starts on
        path = self.write("excel2.csv", excel_file(area_201="一百"))
        r = self.run_pmctl("import", path, rc=3)
        self.assertIn("0 created, 0 updated, 3 unchanged, 1 rejected", r.stdout)
        self.assertEqual(list(rejections(r.stdout)), [4])
        self.assertIn("line 4, column 8 (area_m2): '一百'", r.stdout)

    def test_bad_rows_reported_by_line_and_column_good_rows_applied(self):
        path = self.write("bad.csv", bad_file())
        r = self.run_pmctl("import", path, rc=3)
        self.assertIn("3 created, 0 updated, 0 unchanged, 5 rejected", r.stdout)
        rej = rejections(r.stdout)
        self.assertEqual(sorted(rej), [3, 4, 7, 8, 10], r.stdout)
        self.assertRegex(rej[3], r"line 3, column 5 \(area_m2\): '八十九': not a number")
        self.assertRegex(rej[4], r"line 4, column 4 \(owner_name\).*missing")  # starts on 4, ends on 5
        self.assertRegex(rej[7], r"line 7: 5 fields, the header has 10")
        self.assertRegex(rej[8], r"line 8, column 4 \(owner_name\).*not UTF-8")
        self.assertRegex(rej[10], r"line 10: unterminated quote")
        for u in BAD_GOOD_UNITS:
            self.assertIsNotNone(self.unit(u), u)
        for u in BAD_REJECTED_UNITS:
            self.assertIsNone(self.unit(u), u)
        self.assertEqual(self.c.metric("intake", "intake_units"), 3)

    def test_json_summary_is_one_object(self):
        path = self.write("bad.csv", bad_file())
        r = self.run_pmctl("--json", "import", path, rc=3)
        self.assertEqual(r.stdout.count("\n"), 1, r.stdout)  # one line: progress goes to stderr
        o = json.loads(r.stdout)
        self.assertEqual((o["rows"], o["created"], o["updated"], o["unchanged"], o["rejected"]), (8, 3, 0, 0, 5))
        self.assertEqual([x["line"] for x in o["rejections"]], [3, 4, 7, 8, 10])
        by_line = {x["line"]: x for x in o["rejections"]}
        self.assertEqual((by_line[3]["column"], by_line[3]["field"], by_line[3]["value"]), (5, "area_m2", "八十九"))
        self.assertEqual((by_line[4]["column"], by_line[4]["field"]), (4, "owner_name"))
        self.assertEqual(by_line[7]["column"], 6)  # the first missing column, floor
        self.assertEqual((by_line[8]["column"], by_line[8]["field"]), (4, "owner_name"))
        self.assertTrue(o["batch_id"].startswith("import:"), o["batch_id"])

    def test_header_without_required_column_imports_nothing(self):
        header = HEADER.replace("phone,", "")
        data = (header + "\n" + "E05,和光里,1,101,1,88.00,王一,,%s\n" % resident_id(1)).encode("utf-8")
        path = self.write("nophone.csv", data)
        r = self.run_pmctl("import", path, rc=2)
        self.assertIn("header has no column 'phone'", r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertEqual(self.c.metric("intake", "intake_units"), 0)
        self.assertEqual(self.c.metric("intake", "pm_requests_total",
                                       'method="intake.import",status="OK"'), 0)

    def test_mutated_files_never_crash_pmctl(self):
        """Bit flips, cut lines, stray quotes and NULs in an import file: pmctl
        answers 0, 2 or 3 with a message, never a crash or a hang."""
        import random
        rng = random.Random(99)
        good = excel_file()
        for n in range(25):
            data = bytearray(good)
            for _ in range(rng.randint(1, 8)):
                op = rng.randint(0, 3)
                i = rng.randrange(len(data))
                if op == 0:
                    data[i] ^= 1 << rng.randint(0, 7)
                elif op == 1:
                    data[i:i] = rng.choice([b'"', b",", b"\r\n", b"\x00", b"\xff\xfe", b'""'])
                elif op == 2:
                    del data[i:i + rng.randint(1, 20)]
                else:
                    data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 30)))
            path = self.write("mutated-%d.csv" % n, bytes(data))
            r = self.c.pmctl("import", path, check=False, timeout=60)
            self.assertIn(r.returncode, (0, 2, 3), "file %d: rc %d\n%s%s" % (n, r.returncode, r.stdout, r.stderr))
            self.assertTrue(r.stdout or r.stderr)
        self.assertEqual(self.c.pmctl("ping", "intake", check=False).returncode, 0)

    def test_missing_file(self):
        path = os.path.join(self.dir, "no-such-file.csv")
        r = self.run_pmctl("import", path, rc=2)
        self.assertIn(path, r.stderr)
        self.assertIn("No such file", r.stderr)

    def test_gbk_file_is_converted_and_said_once(self):
        rows = [("101", "王一", "138 0000 0001"), ("102", "李二", "+86 138-0000-0002"), ("103", "张三", "１３８００００００03")]
        path = self.write("gbk.csv", plain_rows(rows).decode("utf-8").encode("gb18030"))
        r = self.run_pmctl("import", path)
        self.assertIn("3 created, 0 updated, 0 unchanged, 0 rejected", r.stdout)
        self.assertEqual(r.stderr.count("read it as GB18030 (GBK)"), 1, r.stderr)
        u = self.unit("E05/1/102")
        self.assertEqual((u["estate_name"], u["owners"][0]["name"], u["owners"][0]["phone"]),
                         ("和光里", "李二", "13800000002"))  # phones as SMS needs them
        self.assertEqual(self.unit("E05/1/103")["owners"][0]["phone"], "13800000003")
        r = self.run_pmctl("--json", "import", path)
        self.assertEqual(json.loads(r.stdout)["encoding"], "GB18030")

    def test_file_level_faults_said_once(self):
        text = plain_rows([("101", "王一", "13800000001"), ("102", "王二", "13800000002")]).decode("utf-8")
        r = self.run_pmctl("import", self.write("u16.csv", b"\xff\xfe" + text.encode("utf-16-le")), rc=2)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        self.assertIn("UTF-16", r.stderr)
        r = self.run_pmctl("import", self.write("long.csv", ("estate_id," + "x" * 70000 + "\n1,2\n").encode()), rc=2)
        self.assertIn("longer than 64 KiB, so it is not a header", r.stderr)
        self.assertNotIn("success", r.stderr)
        data = plain_rows([("101", "王一", "13800000001")]).replace(b"\xe7\x8e\x8b\xe4\xb8\x80", b"A\x00B")
        r = self.run_pmctl("import", self.write("nul.csv", data), rc=3)
        self.assertRegex(r.stdout, r"line 2, column 7 \(owner_name\): .*NUL byte")
        self.assertNotIn("GBK", r.stdout)
        self.assertEqual(self.c.metric("intake", "intake_units"), 0)

    def test_resident_id_in_the_wrong_column_is_never_shown(self):
        rid = resident_id(55)
        data = (HEADER + "\nE05,和光里,1,101,1,88.00,王一,13800000001,%s,%s\n" % (rid, resident_id(56))).encode()
        r = self.run_pmctl("import", self.write("leak.csv", data), rc=3)
        self.assertRegex(r.stdout, r"line 2, column 9 \(email\): '11\*+%s': holds a resident ID number" % rid[-2:])
        q = self.run_pmctl("queues", "intake")
        for out in (r.stdout, r.stderr, q.stdout, self.c.read("intake.log")):
            self.assertNotIn(rid, out)
            self.assertNotIn(rid[2:-2], out)

    def test_dry_run_reports_exactly_what_the_import_does(self):
        # a co-owner row two chunks after its unit's first row, a contradicting estate name, a bad row
        lines = [HEADER] + ["E05,和光里,1,%d,1,88.00,王%d,138000000%02d,,%s" % (101 + i, i, i, resident_id(i))
                            for i in range(4)]
        lines += ["E05,和光里,1,101,1,88.00,李四,13900000009,,%s" % resident_id(9),
                  "E05,和光里二期,1,105,1,88.00,王五,13900000005,,%s" % resident_id(10),
                  "E05,和光里,1,106,1,八十八,王六,13900000006,,%s" % resident_id(11)]
        path = self.write("dry.csv", ("\n".join(lines) + "\n").encode())
        r = self.run_pmctl("import", "--dry-run", "--chunk", "2", path, rc=3)
        self.assertIn("(dry run, nothing written: what the import would do): 4 created, 1 updated, 0 unchanged, "
                      "2 rejected", r.stdout)
        self.assertRegex(r.stdout, r"line 7, column 2 \(estate_name\): '和光里二期': contradicts .*'和光里'")
        self.assertEqual(self.c.metric("intake", "intake_units"), 0)
        self.assertEqual(self.c.metric("intake", "pm_outbox_last_seq"), 0)
        self.assertIn("import_rejections (0)", self.run_pmctl("queues", "intake").stdout)
        real = self.run_pmctl("import", "--chunk", "2", path, rc=3)
        self.assertEqual(r.stdout.split("\n", 1)[1], real.stdout.split("\n", 1)[1])  # the same rejections
        self.assertIn("4 created, 1 updated, 0 unchanged, 2 rejected", real.stdout)
        self.assertEqual(len(self.unit("E05/1/101")["owners"]), 2)
        r = self.run_pmctl("--json", "import", "--dry-run", path, rc=3)
        o = json.loads(r.stdout)
        self.assertEqual((o["dry_run"], o["created"], o["updated"], o["unchanged"]), (True, 0, 0, 5))

    def test_rerun_changes_nothing_and_a_changed_phone_is_one_update(self):
        rows = [("101", "王一", "13800000001"), ("102", "王二", "13800000002"), ("103", "王三", "13800000003")]
        path = self.write("units.csv", plain_rows(rows))
        r = self.run_pmctl("import", path)
        self.assertIn("3 created, 0 updated, 0 unchanged, 0 rejected", r.stdout)
        r = self.run_pmctl("import", path)
        self.assertIn("0 created, 0 updated, 3 unchanged, 0 rejected", r.stdout)
        rows[1] = ("102", "王二", "13911112222")
        path = self.write("units-fixed.csv", plain_rows(rows))
        r = self.run_pmctl("import", path)
        self.assertIn("0 created, 1 updated, 2 unchanged, 0 rejected", r.stdout)
        self.assertEqual(self.unit("E05/1/102")["owners"][0]["phone"], "13911112222")
        self.assertEqual(self.c.metric("intake", "pm_outbox_last_seq"), 4)  # 3 registered + 1 updated


# --- call ------------------------------------------------------------------------------------

class Call(PmctlCase):
    def setUp(self):
        super().setUp()
        self.c.start("intake")

    def assert_one_line_error(self, r, *words):
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)

    def test_refusals(self):
        r = self.run_pmctl("call", "nosuchdaemon", "ops.ping", rc=2)
        self.assert_one_line_error(r, "unknown daemon 'nosuchdaemon'")
        r = self.run_pmctl("call", "intake", "intake.nosuch", rc=2)
        self.assert_one_line_error(r, "unknown method 'intake.nosuch'")
        r = self.run_pmctl("call", "intake", "intake.unit.get", '{"unit_id": "E01/1/101"', rc=2)
        self.assert_one_line_error(r, "bad JSON")
        r = self.run_pmctl("call", "intake", "intake.unit.get", '{"unitid": "E01/1/101"}', rc=2)
        self.assert_one_line_error(r, "unknown field 'unitid'")
        r = self.run_pmctl("call", "intake", "intake.unit.get", '{"unit_id": "E01/9/999"}', rc=1)
        self.assertIn("NOT_FOUND", r.stderr)
        self.assertIn("E01/9/999", r.stderr)
        # only the last one reached intake
        self.assertEqual(self.c.metric("intake", "pm_requests_total",
                                       'method="intake.unit.get",status="NOT_FOUND"'), 1)

    def test_json_ping(self):
        r = self.run_pmctl("--json", "call", "intake", "ops.ping")
        self.assertEqual(r.stdout.count("\n"), 1, r.stdout)
        o = json.loads(r.stdout)
        self.assertEqual(o["status"], "OK")
        self.assertEqual(o["ops_ping"]["daemon"], "intake")
        self.assertEqual(o["ops_ping"]["pid"], self.c.procs["intake"].pid)


# --- events ------------------------------------------------------------------------------------

class Events(PmctlCase):
    ROWS = [("101", "王一", "13800000001"), ("102", "王二", "13800000002"), ("103", "王三", "13800000003")]

    def setUp(self):
        super().setUp()
        self.c.start("intake")
        self.run_pmctl("import", self.write("units.csv", plain_rows(self.ROWS)))  # seqs 1-3, registered

    def import_changed_phone(self):  # one more event: intake.unit.updated
        rows = list(self.ROWS)
        rows[0] = ("101", "王一", "13700000000")
        self.run_pmctl("import", self.write("units2.csv", plain_rows(rows)))

    def events(self, *args):
        r = self.run_pmctl("events", *args)
        return [json.loads(line) for line in r.stdout.splitlines()]

    def test_replay_from_and_prefix(self):
        self.import_changed_phone()
        evs = self.events("intake")
        self.assertEqual([e["seq"] for e in evs], [1, 2, 3, 4])
        self.assertEqual([e["type"] for e in evs], ["intake.unit.registered"] * 3 + ["intake.unit.updated"])
        self.assertEqual({e["source"] for e in evs}, {"intake"})
        self.assertEqual([e["unit_id"] for e in evs], ["E05/1/101", "E05/1/102", "E05/1/103", "E05/1/101"])
        self.assertEqual([e["seq"] for e in self.events("--from", "3", "intake")], [3, 4])
        upd = self.events("intake", "intake.unit.updated")
        self.assertEqual([(e["seq"], e["type"]) for e in upd], [(4, "intake.unit.updated")])
        self.assertEqual([e["seq"] for e in self.events("intake", "intake.unit.registered")], [1, 2, 3])
        self.assertEqual(self.events("intake", "billing."), [])

    def test_follow_sees_a_later_import_and_stops_on_sigint(self):
        p = subprocess.Popen([os.path.join(BUILD, "tools/pmctl/pmctl"), "events", "--follow", "intake"],
                             env=self.c.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.bg.append(p)
        lines = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(x) for x in p.stdout], daemon=True)
        reader.start()
        seen = []

        def have(n):
            while True:
                try:
                    seen.append(json.loads(lines.get_nowait()))
                except queue.Empty:
                    return len(seen) >= n
        poll("the replay of seqs 1-3", lambda: have(3), deadline_s=20)
        self.import_changed_phone()  # after the replay: this one comes live
        poll("the live event", lambda: have(4), deadline_s=20)
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=10)
        reader.join(timeout=10)
        err = p.stderr.read()
        p.stdout.close()
        p.stderr.close()
        self.assertEqual(rc, 0, err)
        have(0)
        self.assertEqual([e["seq"] for e in seen], [1, 2, 3, 4])
        self.assertEqual((seen[3]["type"], seen[3]["unit_id"]), ("intake.unit.updated", "E05/1/101"))


# --- clock ---------------------------------------------------------------------------------------

class Clock(PmctlCase):
    def clocks(self):
        r = self.run_pmctl("--json", "clock", "get")
        return {o["daemon"]: o for o in json.loads(r.stdout)}

    def test_advance_refused_on_the_wall_clock(self):
        self.c.start(*DAEMONS)
        r = self.run_pmctl("clock", "advance", "1d", rc=1)
        for d in DAEMONS:
            self.assertRegex(r.stderr, r"pmctl: %s: CONFLICT: .*manual_clock = true" % d)
        self.assertEqual({d: o["manual"] for d, o in self.clocks().items()}, {d: False for d in DAEMONS})

    def test_advance_moves_every_daemon_by_a_day(self):
        self.c.env["PM_GENERAL_MANUAL_CLOCK"] = "true"  # daemons and pmctl alike
        self.c.start(*DAEMONS)
        t0 = time.monotonic()
        before = self.clocks()
        self.run_pmctl("clock", "advance", "1d")
        after = self.clocks()
        slack_ms = (time.monotonic() - t0) * 1000 + 1000
        self.assertEqual(sorted(after), sorted(DAEMONS))
        for d in DAEMONS:
            moved = after[d]["now_ms"] - before[d]["now_ms"]
            self.assertTrue(DAY_MS <= moved <= DAY_MS + slack_ms, "%s moved by %d ms" % (d, moved))
            self.assertTrue(after[d]["manual"], d)
        # a manual clock stands still: the day is not eaten by wall time passing
        again = self.clocks()
        self.assertEqual({d: o["now_ms"] for d, o in again.items()}, {d: o["now_ms"] for d, o in after.items()})


# --- metrics, queues, ping, sync ------------------------------------------------------------------

class Ops(PmctlCase):
    def test_metrics_prom(self):
        self.c.start("intake")
        self.run_pmctl("import", self.write("units.csv", plain_rows([("101", "王一", "13800000001")])))
        r = self.run_pmctl("metrics", "intake", "--prom")
        self.assertRegex(r.stdout, r'(?m)^pm_requests_total\{daemon="intake",method="intake\.import",'
                                   r'status="OK"\} [1-9]')
        self.assertRegex(r.stdout, r'(?m)^intake_units\{daemon="intake"\} 1$')

    def test_queues_list_rejected_rows_until_fixed(self):
        self.c.start("intake")
        self.run_pmctl("import", self.write("bad.csv", bad_file()), rc=3)
        r = self.run_pmctl("queues", "intake")
        # the rows intake judged (values); rows that are not CSV never reach it (see the report)
        self.assertIn("import_rejections (2)", r.stdout)
        # kept by the file's full path: another bad.csv elsewhere is another file
        self.assertRegex(r.stdout, r"(?m)^ +/\S*/bad\.csv:3 .*area_m2: .*value=八十九")
        self.assertRegex(r.stdout, r"(?m)^ +/\S*/bad\.csv:4 .*owner_name: missing")
        # the same file name with those two rows fixed: they leave the queue
        fixed = bad_file().replace("八十九".encode(), b"89.00").replace(b"E02,1,103,,", "E02,1,103,王三,".encode())
        self.run_pmctl("import", self.write("bad.csv", fixed), rc=3)
        r = self.run_pmctl("queues", "intake")
        self.assertIn("import_rejections (0)", r.stdout)
        self.assertNotIn("bad.csv:", r.stdout)

    def test_ping_shows_the_daemon_that_is_down(self):
        self.small_config()
        self.c.start(*self.SMALL)
        r = self.run_pmctl("ping")
        self.assertRegex(r.stdout, r"(?m)^intake +up ")
        self.assertRegex(r.stdout, r"(?m)^billing +up ")
        self.c.kill("billing")
        r = self.run_pmctl("--timeout", "1000", "ping", rc=1)
        self.assertRegex(r.stdout, r"(?m)^intake +up ")
        self.assertRegex(r.stdout, r"(?m)^billing +DOWN ")
        r = self.run_pmctl("--json", "--timeout", "1000", "ping", rc=1)
        self.assertEqual({o["daemon"]: o["up"] for o in json.loads(r.stdout)},
                         {"intake": True, "billing": False, "inspection": True, "workorder": True, "notify": True})

    def test_unit_shows_each_daemons_part_and_which_is_down(self):
        self.small_config()
        self.c.start(*self.SMALL)
        self.run_pmctl("import", self.write("units.csv", plain_rows([("101", "王一", "13800000001")])))
        self.run_pmctl("sync", "--wait", "30")
        r = self.run_pmctl("--timeout", "1000", "unit", "E05/1/101")
        self.assertIn("intake: REGISTERED", r.stdout)
        self.assertRegex(r.stdout, r"owner 0 +王一  138\*\*\*\*0001  ID 1101\*{10}\d{3}[\dX]")
        self.assertRegex(r.stdout, r"(?m)^billing:\n  unit_id: E05/1/101\n  estate_id: E05\n  area_cm2: 8800")
        for d in self.SMALL:
            self.assertRegex(r.stdout, r"(?m)^%s:" % d)
        self.c.kill("billing")
        r = self.run_pmctl("--timeout", "1000", "unit", "E05/1/101")
        self.assertRegex(r.stdout, r"(?m)^billing: not available \(no answer: is it running")
        self.assertIn("intake: REGISTERED", r.stdout)
        r = self.run_pmctl("--timeout", "1000", "unit", "E05/1/999", rc=1)
        self.assertRegex(r.stdout, r"(?m)^intake: nothing on this unit \(unit_id: no unit 'E05/1/999'")

    def test_sync_waits_for_billing(self):
        self.small_config()
        self.c.start(*self.SMALL)
        rows = [("%d01" % f, "王%d" % f, "138000000%02d" % f) for f in range(1, 41)]
        self.run_pmctl("import", self.write("units.csv", plain_rows(rows)))
        r = self.run_pmctl("sync", "--wait", "30")
        self.assertIn("in sync", r.stdout)
        # no polling: once sync said so, billing has applied every intake event
        last = self.c.metric("intake", "pm_outbox_last_seq")
        self.assertEqual(last, 40)
        self.assertEqual(self.c.metric("billing", "pm_consumer_applied_seq", 'source="intake"'), last)
        self.assertEqual(self.c.metric("billing", "billing_units"), 40)
        self.run_pmctl("call", "billing", "billing.unit.get", '{"unit_id": "E05/1/4001"}')
        # with billing down, sync cannot say so: it gives up naming billing
        self.c.kill("billing")
        r = self.run_pmctl("--timeout", "500", "sync", "--wait", "1", rc=1)
        self.assertIn("billing did not answer", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

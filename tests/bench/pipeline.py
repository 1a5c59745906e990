#!/usr/bin/python3
"""The bulk move-in pipeline benchmark: a property group's year of handovers,
imported as a new user would, with every daemon's projection caught up.

    tests/bench/pipeline.py [--units 10000,100000,1000000] [--compare postgres]

For each N it generates a sales list of N units interleaved across estates
(5,000 units an estate, the estates' rows mixed at random as a sales list
mixes them; within an estate, buildings come out in order and each building's
units in random order), starts every daemon from the build tree in a temp
PM_HOME, runs `pmctl import` and `pmctl sync`, and reports:

  rows/s and us per row (import + every projection caught up), the time the
  projections needed after the import's end, bytes written per row by each
  daemon (/proc/PID/io write_bytes), each daemon's private memory (RssAnon:
  LMDB's mapped pages count in RSS, not here) and LMDB bytes per unit, and the
  machine's raw LMDB durable commit rate measured before and after the run.

With --compare postgres it installs PostgreSQL (apt-get, when missing), starts
a private cluster in the temp dir (Debian's defaults, fsync on) and loads the
same CSV into a units table plus an outbox table in the same transaction:
500 rows per transaction on 4 connections, and with COPY.
"""
import argparse
import csv
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "../.."))
BUILD = os.environ.get("PM_BUILD", os.path.join(SOURCE, "build"))
DAEMONS = ["intake", "inspection", "workorder", "billing", "notify", "gateway"]
PER_ESTATE = 5000

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"


def resident_id(rng):
    body = rng.choice(["110105", "310104", "440305"]) + "%04d%02d%02d%03d" % (
        rng.randint(1950, 2000), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 999))
    return body + CHECK[sum(int(c) * w for c, w in zip(body, WEIGHTS)) % 11]


def estate_units(e):
    """One estate's units in sales order: buildings in order, each shuffled."""
    rng = random.Random(1000 + e)
    out = []
    for b in range(PER_ESTATE // 200):
        units = [(b + 1, f + 1, u + 1) for f in range(50) for u in range(4)]
        rng.shuffle(units)
        out.extend(units)
    return out


def generate(path, n, seed=7):
    rng = random.Random(seed)
    estates = (n + PER_ESTATE - 1) // PER_ESTATE
    queues = []
    for e in range(estates):
        units = estate_units(e)[: min(PER_ESTATE, n - e * PER_ESTATE)]
        queues.append(["E%03d" % (e + 1), units, 0])
    live = list(range(estates))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["estate_id", "estate_name", "building", "unit", "floor", "area_m2", "owner_name", "phone",
                    "email", "id_number"])
        while live:
            k = rng.randrange(len(live))
            q = queues[live[k]]
            b, fl, u = q[1][q[2]]
            q[2] += 1
            if q[2] == len(q[1]):
                live[k] = live[-1]
                live.pop()
            w.writerow([q[0], "花园%s" % q[0], str(b), "%d%02d" % (fl, u), fl,
                        "%d.%02d" % (rng.randint(60, 180), rng.randint(0, 99)),
                        rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
                        "1%d%09d" % (rng.choice([3, 5, 7, 8, 9]), rng.randint(0, 999999999)), "",
                        resident_id(rng)])


def proc_io(pid):
    try:
        with open("/proc/%d/io" % pid) as f:
            return {k: int(v) for k, v in (line.split(": ") for line in f)}
    except OSError:
        return {}


def cpu_s(pid):
    """user + system CPU seconds of a process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def rss_anon_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def raw_lmdb(tmp):
    out = subprocess.run([os.path.join(BUILD, "tests/bench/pm-bench"), "--raw-lmdb", "--dir", tmp],
                         capture_output=True, text=True, check=True).stdout
    return float(out.split(":")[1].split()[0])


class Pipeline:
    def __init__(self, tmp):
        self.home = tempfile.mkdtemp(prefix="pipe.", dir=tmp)
        self.env = dict(os.environ, PM_HOME=self.home)
        self.procs = {}
        self.peak = {d: 0 for d in DAEMONS}
        self.stop_sampling = False

    def pmctl(self, *args, check=True):
        r = subprocess.run([os.path.join(BUILD, "tools/pmctl/pmctl")] + list(args), env=self.env,
                           capture_output=True, text=True)
        if check and r.returncode not in (0, 3):
            raise SystemExit("pmctl %s -> %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def start(self):
        os.makedirs(os.path.join(self.home, "log"), exist_ok=True)
        for d in DAEMONS:
            log = open(os.path.join(self.home, "log", d + ".log"), "ab")
            self.procs[d] = subprocess.Popen([os.path.join(BUILD, "services", d, "pm-" + d)], env=self.env,
                                             stdout=log, stderr=log)
        self.pmctl("ping", "--wait", "30")
        self.sampler = threading.Thread(target=self.sample, daemon=True)
        self.sampler.start()

    def sample(self):
        while not self.stop_sampling:
            for d, p in self.procs.items():
                self.peak[d] = max(self.peak[d], rss_anon_kib(p.pid))
            time.sleep(0.2)

    def metric(self, daemon, name, labels=""):
        r = self.pmctl("--json", "call", daemon, "ops.metrics", check=False)
        for m in json.loads(r.stdout or "{}").get("ops_metrics", {}).get("metrics", []):
            if m["name"] == name and m.get("labels", "") == labels:
                return m.get("value", 0)
        return 0

    def stop(self):
        self.stop_sampling = True
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            p.wait(timeout=60)
        if KEEP:
            print("  (kept: %s)" % self.home)
        else:
            shutil.rmtree(self.home, ignore_errors=True)


IMPORT_ARGS = []
KEEP = False


def run_pipeline(n, csv_path, tmp):
    pl = Pipeline(tmp)
    try:
        pl.start()
        io0 = {d: proc_io(p.pid) for d, p in pl.procs.items()}
        cpu0 = {d: cpu_s(p.pid) for d, p in pl.procs.items()}
        import resource
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        r = pl.pmctl("import", csv_path, *IMPORT_ARGS)
        t_import = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        pl.pmctl("sync", "--wait", "3600")
        t_total = time.monotonic() - t0
        io1 = {d: proc_io(p.pid) for d, p in pl.procs.items()}
        cpu = {d: cpu_s(p.pid) - cpu0[d] for d, p in pl.procs.items()}
        cpu["pmctl import"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        written = {d: io1[d].get("write_bytes", 0) - io0[d].get("write_bytes", 0) for d in DAEMONS}
        used = {d: pl.metric(d, "pm_map_used_bytes") for d in DAEMONS}
        gaps = {d: pl.metric(d, "pm_consumer_gaps_total", 'source="intake"') for d in DAEMONS[1:]}
        replays = pl.metric("intake", "pm_requests_total", 'method="events.replay",status="OK"')
        rss = {d: rss_anon_kib(p.pid) for d, p in pl.procs.items()}
        peak = {d: max(pl.peak[d], rss[d]) for d in DAEMONS}
        summary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
        return {"n": n, "import_s": t_import, "total_s": t_total, "written": written, "used": used,
                "rss_kib": peak, "summary": summary, "cpu_s": cpu, "gaps": gaps,
                "replays": replays}
    finally:
        pl.stop()


# --- PostgreSQL, side by side ------------------------------------------------------

PG_BIN = "/usr/lib/postgresql/15/bin"


def pg_install():
    if not os.path.exists(os.path.join(PG_BIN, "initdb")) or subprocess.run(
            ["/usr/bin/python3", "-c", "import psycopg2"], stderr=subprocess.DEVNULL).returncode != 0:
        print("installing postgresql and python3-psycopg2 (apt-get) ...", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql",
                        "python3-psycopg2"], check=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


class Postgres:
    def __init__(self, tmp):
        self.dir = tempfile.mkdtemp(prefix="pg.", dir=tmp)
        os.chmod(tmp, 0o755)  # the postgres user must reach its directory
        self.data = os.path.join(self.dir, "data")
        self.sock = self.dir
        self.user = "postgres" if os.getuid() == 0 else None
        if self.user:
            shutil.chown(self.dir, self.user, self.user)
        self.run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", "postgres", "--no-locale", "-E", "UTF8"])
        self.run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w",
                  "-o", "-k %s -c listen_addresses='' -p 5432" % self.sock, "start"])

    def run(self, cmd):
        if self.user:
            cmd = ["runuser", "-u", self.user, "--"] + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def connect(self):
        import psycopg2
        return psycopg2.connect(host=self.sock, port=5432, user="postgres", dbname="postgres")

    def reset(self):
        c = self.connect()
        c.autocommit = True
        cur = c.cursor()
        cur.execute("DROP TABLE IF EXISTS units; DROP TABLE IF EXISTS outbox")
        cur.execute("CREATE TABLE units (unit_id text PRIMARY KEY, estate_id text, estate_name text, building text,"
                    " unit text, floor int, area_cm2 bigint, owner_name text, phone text, email text,"
                    " id_sealed bytea)")
        cur.execute("CREATE TABLE outbox (seq bigserial PRIMARY KEY, type text, unit_id text, payload jsonb)")
        c.close()

    def stop(self):
        self.run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", "fast", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)


def pg_rows(csv_path):
    with open(csv_path, encoding="utf-8") as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            yield row


def pg_load_txn(pg, csv_path, conns=4, per_txn=500):
    """units + outbox in one transaction per 500 rows, on 4 connections
    (multi-row INSERTs: psycopg2's execute_values, as a team would load)."""
    from psycopg2.extras import execute_values
    rows = list(pg_rows(csv_path))
    parts = [rows[i::conns] for i in range(conns)]
    errors = []

    def work(part):
        try:
            c = pg.connect()
            cur = c.cursor()
            for i in range(0, len(part), per_txn):
                batch = part[i:i + per_txn]
                args = [("%s/%s/%s" % (r[0], r[2], r[3]), r[0], r[1], r[2], r[3], int(r[4]),
                         int(round(float(r[5]) * 100)), r[6], r[7], r[8], r[9].encode()) for r in batch]
                execute_values(cur, "INSERT INTO units VALUES %s ON CONFLICT DO NOTHING", args, page_size=per_txn)
                execute_values(cur, "INSERT INTO outbox (type, unit_id, payload) VALUES %s",
                                [("intake.unit.registered", a[0], json.dumps({"unit_id": a[0], "area_cm2": a[6]}))
                                 for a in args], page_size=per_txn)
                c.commit()
            c.close()
        except Exception as e:  # reported, not hidden
            errors.append(e)

    t0 = time.monotonic()
    threads = [threading.Thread(target=work, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.monotonic() - t0


def pg_load_copy(pg, csv_path):
    """The same rows with COPY (units and outbox, one transaction)."""
    t0 = time.monotonic()
    c = pg.connect()
    cur = c.cursor()
    units, outbox = io.StringIO(), io.StringIO()
    w1, w2 = csv.writer(units), csv.writer(outbox)
    for r in pg_rows(csv_path):
        uid = "%s/%s/%s" % (r[0], r[2], r[3])
        w1.writerow([uid, r[0], r[1], r[2], r[3], r[4], int(round(float(r[5]) * 100)), r[6], r[7], r[8],
                     "\\x" + r[9].encode().hex()])
        w2.writerow(["intake.unit.registered", uid, json.dumps({"unit_id": uid})])
    units.seek(0)
    outbox.seek(0)
    cur.copy_expert("COPY units FROM STDIN WITH (FORMAT csv)", units)
    cur.copy_expert("COPY outbox (type, unit_id, payload) FROM STDIN WITH (FORMAT csv)", outbox)
    c.commit()
    c.close()
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--units", default="10000,100000,1000000")
    ap.add_argument("--compare", choices=["postgres"])
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--keep", action="store_true", help="keep each run's PM_HOME (for mdb_stat) under --dir")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--import-args", default="", help="extra pmctl import options, e.g. '--chunk 2000'")
    a = ap.parse_args()
    if a.compare and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        # Debian's python3-psycopg2 is for Debian's python3
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sizes = [int(x) for x in a.units.split(",")]
    IMPORT_ARGS.extend(a.import_args.split())
    global KEEP
    KEEP = a.keep
    tmp = tempfile.mkdtemp(prefix="pmpipe.", dir=a.dir)
    results = []
    pg = None
    try:
        if a.compare:
            pg_install()
            pg = Postgres(tmp)
        raw_before = raw_lmdb(tmp)
        for n in sizes:
            path = os.path.join(tmp, "units-%d.csv" % n)
            generate(path, n)
            res = run_pipeline(n, path, tmp)
            if pg:
                pg.reset()
                res["pg_txn_s"] = pg_load_txn(pg, path)
                pg.reset()
                res["pg_copy_s"] = pg_load_copy(pg, path)
            os.unlink(path)
            results.append(res)
            report(res)
        raw_after = raw_lmdb(tmp)
        print("raw LMDB durable commits/s: %.0f before, %.0f after" % (raw_before, raw_after))
        if len(results) > 1:
            first, last = results[0], results[-1]
            ratio = (last["total_s"] / last["n"]) / (first["total_s"] / first["n"])
            print("cost per row at %d units / at %d units: %.2f" % (last["n"], first["n"], ratio))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"results": results, "raw_lmdb": [raw_before, raw_after]}, f, indent=1)
    finally:
        if pg:
            pg.stop()
        if not KEEP:
            shutil.rmtree(tmp, ignore_errors=True)


def report(r):
    n = r["n"]
    rate = n / r["total_s"]
    print("\n== %d units (%s)" % (n, r["summary"]))
    print("  pipeline: %.1f s (import %.1f s, projections caught up %.2f s after it): %.0f rows/s, %.1f us/row"
          % (r["total_s"], r["import_s"], r["total_s"] - r["import_s"], rate, 1e6 / rate))
    for d in DAEMONS:
        print("  %-10s written %7.1f KB/row   RssAnon peak %6.1f MiB   LMDB %6.0f B/unit   CPU %5.1f us/row"
              % (d, r["written"][d] / n / 1024, r["rss_kib"][d] / 1024, r["used"][d] / n, r["cpu_s"][d] * 1e6 / n))
    print("  live-feed gaps repaired by replay: %s; replay pages intake served: %d"
          % (", ".join("%s %d" % (d, g) for d, g in r["gaps"].items()), r["replays"]))
    total_cpu = sum(r["cpu_s"].values())
    print("  pmctl import CPU %.1f us/row; all processes %.0f%% of the two cores"
          % (r["cpu_s"]["pmctl import"] * 1e6 / n, 100 * total_cpu / (2 * r["total_s"])))
    if "pg_txn_s" in r:
        print("  postgres 15: 4 conns x 500 rows/txn %.0f rows/s; COPY %.0f rows/s; pipeline = %.2fx txn, %.2fx COPY"
              % (n / r["pg_txn_s"], n / r["pg_copy_s"], r["pg_txn_s"] / r["total_s"], r["pg_copy_s"] / r["total_s"]))


if __name__ == "__main__":
    main()

/* pm-movein-bench - the whole move-in, end to end, through all six daemons.
 *
 *   pm-movein-bench [--estates E] [--units U] [--inflight K] [--defect-every N]
 *                   [--half-estates H] [--dir DIR] [--keep]
 *
 * It starts pm-intake, pm-inspection, pm-workorder, pm-billing, pm-notify and
 * pm-gateway from the build tree (next to this binary) in a temp PM_HOME under
 * DIR, on the manual clock, with generated configuration for E estates (a fee
 * schedule each, a team of technicians each, notify's staff directory), and
 * drives the move-in of E x U units through them as the staff of a move-in
 * day would, with pipelined clients: one DEALER per daemon, K requests in
 * flight (pm_inflight_t: replies matched by id), each unit's steps in order.
 *
 *   import      intake.import, 500-row chunks of generated owners (Chinese
 *               names, mobiles, valid resident ID numbers, areas)
 *   notices     intake.notice.send per estate (notify sends every notice)
 *   plan        intake.schedule.plan per estate: one day, 08:00-18:00
 *   (clock)     the day before: reminders; then the day itself, 08:00
 *   check-ins   intake.checkin per unit (identity, documents, agreements):
 *               billing issues the move-in invoice, inspection opens
 *   inspection  per unit round.start, a defect.record for each defect (one
 *               unit in N has 1-3), items.record remaining_ok, round.complete;
 *               workorder makes an order per defect and dispatches it
 *   rectify     per defective unit workorder.unit.get (the technician's list),
 *               then workorder.start and .done per order: defects RECTIFIED
 *   (clock)     the next day, 09:00
 *   reinspect   per defective unit round.start, defect.verify each, complete
 *   payments    billing.payment.record per unit (the move-in invoice)
 *   keys        intake.keys.handover per unit: KEYS_HANDED
 *   drain       notify has sent every message that is due
 *
 * Between phases it waits, as a user would, until every projection caught
 * up: every daemon's pm_consumer_applied_seq of every upstream reaches that
 * upstream's last committed seq (pmctl sync), and the domain daemons stopped
 * moving. Every reply is sent only after its group commit (fsync): the run
 * is durable.
 *
 * It reports the time end to end (import to keys, projections in sync; and
 * to the last message sent), units/s, events/s (all daemons' outbox seqs),
 * command latency p50/p99/p99.9 overall and per phase, each daemon's CPU per
 * phase, peak RSS (VmHWM), largest RssAnon seen, LMDB size in use
 * (pm_map_used_bytes) and its own runtime metrics; and, measured in the same
 * run, the machine's raw ceilings: ZeroMQ PUB->SUB messages/s between two
 * processes (a fork) and LMDB durable commits/s (one put per commit, before
 * and after), so that the figures read as ratios.
 *
 * Then the latency run: H more estates are imported, noticed and planned,
 * and their check-ins are sent on a schedule (open loop) at half the peak
 * rate measured in the check-in phase; each latency runs from the scheduled
 * send, so a stall counts in full for every request it delays. */
#define _GNU_SOURCE
#include "pm/client.h"
#include "pm/clock.h"
#include "pm/err.h"
#include "pm/mem.h"
#include "pm/store.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_CHUNK_ROWS 500       /* rows per intake.import, as pmctl import */
#define S_PER_BUILDING 100     /* units per building: 25 floors of 4 */
#define S_MAX_DEFECTS 3        /* per defective unit */
#define S_RETRY_MS 60000       /* resend a request unanswered this long (same id) */
#define S_DEADLINE_MS 180000   /* give a request up after this long */
#define S_SYNC_S 900           /* give a sync up after this long */
#define S_LMDB_COMMITS 2000
#define S_ZMQ_MESSAGES 500000
#define S_ZMQ_BYTES 300        /* about an event's size */
#define S_FAILS_SHOWN 5        /* failures printed per phase */

/* The manual clock's days (UTC; estate time is UTC+8). */
#define S_T_START "2026-12-01T01:00:00Z"    /* 09:00: import, notices, plan */
#define S_T_EVE "2026-12-02T10:00:00Z"      /* 18:00 the day before: reminders */
#define S_T_DAY "2026-12-03T00:00:00Z"      /* 08:00 move-in day: check-ins, inspection, rectification */
#define S_T_NEXT "2026-12-04T01:00:00Z"     /* 09:00: re-inspection, payments, keys */
#define S_T_HALF "2026-12-05T00:00:00Z"     /* 08:00: the latency run's check-ins */
#define S_DAY "2026-12-03"
#define S_HALF_DAY "2026-12-05"

enum { D_INTAKE, D_INSPECTION, D_WORKORDER, D_BILLING, D_NOTIFY, D_GATEWAY, D_N };
static const char *const s_dname[D_N] = { "intake", "inspection", "workorder", "billing", "notify", "gateway" };

enum { P_IMPORT, P_NOTICES, P_PLAN, P_CHECKIN, P_INSPECT, P_RECTIFY, P_REINSPECT, P_PAY, P_KEYS, P_DRAIN,
       P_MAIN, /* the phases above are the move-in */
       P_HALF_SETUP = P_MAIN, P_HALF, P_N };
static const char *const s_pname[P_N] = { "import", "notices", "plan", "check-ins", "inspection", "rectify",
                                          "reinspect", "payments", "keys", "drain", "half:setup", "half:check-ins" };

static const char *const s_documents[] = { "身份证", "购房合同" };
static const char *const s_agreements[] = { "前期物业服务协议", "业主临时公约", "消防安全责任书", "装修协议",
                                            "委托银行代收款协议书" };
/* Defects as inspectors find them: a line of the default checklist each. */
static const struct {
    const char *room, *category, *description;
} s_defect_kinds[] = {
    { "客厅", "墙面/天花", "墙面空鼓约0.3平方米" },
    { "厨房", "给排水", "水槽下水管接口渗水" },
    { "卧室", "电气", "空调插座不通电" },
    { "客厅", "门窗", "窗扇密封胶条脱落" },
    { "客厅", "地面", "地面起砂" },
};
static const char *const s_surnames[] = { "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周",
                                          "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗", "高" };
static const char *const s_given[] = { "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军",
                                       "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀兰", "霞",
                                       "平", "刚", "桂英", "建国", "志强", "海燕", "晓梅", "立新", "国平", "永红" };

/* --- what the run holds ------------------------------------------------------------ */

/* One unit and its owner, as generated, and what the run learnt of it. */
typedef struct {
    char id[48];                      /* E001/3/1201 */
    char building[12], unit[12], floor[12], area[24];
    char owner[16], phone[24], email[40], id_number[72];
    int estate;                       /* index */
    int64_t area_cm2;
    int64_t invoice_fen;              /* the move-in invoice, as billing computes it */
    uint8_t defects;                  /* recorded at round 1 */
    uint8_t nids;
    char ids[S_MAX_DEFECTS][40];      /* its orders (rectify), then the defects to verify */
} s_unit_t;

/* One daemon process and its clients. */
typedef struct {
    pid_t pid;
    pm_client_t *work;                /* the pipelined DEALER */
    pm_client_t *ctl;                 /* ping, metrics, clock */
    uint64_t last_seq;
    long hwm_kb, anon_max_kb, anon_kb, rss_kb;
    double cpu_s;                     /* user + system so far */
    double written_mb;                /* written with write(2)/pwrite(2) so far (/proc/PID/io wchar), MiB */
} s_daemon_t;

/* What a phase did. */
typedef struct {
    bool ran;
    int64_t t0_us, t1_us;             /* the commands */
    int64_t sync_us;                  /* waiting for the projections after them */
    int64_t *lat_us;
    size_t nlat, cap;
    uint64_t failed;
    int shown;
    double cpu0[D_N], cpu[D_N];       /* daemon CPU seconds over the phase and its sync */
    double wr0[D_N], wr[D_N];         /* MiB the daemons wrote to disk over it */
    double rate;                      /* paced: the rate asked for */
} s_phase_t;

/* A request in flight: which job, which of its steps. */
typedef struct s_flight {
    int job;                          /* index into the phase's subjects */
    int step;
    int64_t at_us;                    /* sent (paced first step: scheduled) */
    bool paced;
    const char *method;
} s_flight_t;

typedef struct s_bench s_bench_t;
/* Sends the next request of f's job (s_send), given the reply to the last
 * (NULL for step 0); false when the job is done (or failed: s_fail). */
typedef bool (*s_step_fn) (s_bench_t *b, s_flight_t *f, const Pm__V1__Reply *prev);

struct s_bench {
    int estates, units, inflight, defect_every, half_estates;
    bool keep;
    char dir[PATH_MAX];
    char bin[PATH_MAX + 32];          /* build tree's services/ */
    void *zctx;
    s_daemon_t d[D_N];
    pm_inflight_t *fl;
    s_unit_t *u;                      /* (estates + half_estates) x units */
    char (*estate)[16];
    int *subjects;                    /* the running phase's jobs */
    int phase;
    s_phase_t ph[P_N];
    int64_t msgs_sent;                /* notify_sent_total at the end */
    uint64_t pending, sending;        /* notify's at the last sync poll */
    char lag[160];                    /* the last sync's last lagging consumer */
    char id_prefix[27];               /* request ids: a ULID of the run's start, then a counter */
    uint64_t ids;
};

static volatile sig_atomic_t s_interrupted;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_interrupted = 1;
}

static int
s_rm (const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb, (void) flag, (void) ftw;
    return remove (p);
}

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

/* The p-quantile (0 < p <= 1) of sorted v[0..n), in ms. */
static double
s_ms_at (const int64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t) (p * (double) n + 0.999999);
    return (double) v[i > 0 ? i - 1 : 0] / 1000.0;
}

static uint32_t
s_mix (uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static void
s_die (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    fputs ("pm-movein-bench: ", stderr);
    vfprintf (stderr, fmt, ap);
    fputc ('\n', stderr);
    va_end (ap);
}

/* --- the machine's ceilings ------------------------------------------------------- */

/* Raw LMDB: one small put per durable commit, in a store of its own under
 * dir/name. Commits/s, 0 on failure. */
static double
s_lmdb_rate (const char *dir, const char *name, int commits)
{
    char path[PATH_MAX + 64];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    pm_store_t *s = pm_store_open (path, 64u << 20, NULL);
    if (!s)
        return 0;
    double rate = 0;
    int64_t t0 = pm_mono_us ();
    for (int i = 0; i < commits; i++) {
        pm_txn_t t;
        unsigned char k[8];
        pm_u64_be ((uint64_t) i, k);
        pm_txn_begin (&t, s, NULL);
        pm_txn_put (&t, PM_DB_META, k, 8, "0123456789abcdef0123456789abcdef", 32);
        if (pm_txn_commit (&t) != PM_OK)
            goto done;
    }
    rate = commits / ((double) (pm_mono_us () - t0) / 1e6);
done:
    pm_store_destroy (&s);
    nftw (path, s_rm, 8, FTW_DEPTH | FTW_PHYS);
    return rate;
}

/* The SUB end, in the forked child: counts [type][event] messages until
 * "end" and writes the count and the seconds from the first to the last. */
static void
s_zmq_sub (const char *ep, int ready_fd, int result_fd)
{
    void *ctx = zmq_ctx_new ();
    void *sub = zmq_socket (ctx, ZMQ_SUB);
    int hwm = 100000;
    zmq_setsockopt (sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "", 0);
    zmq_connect (sub, ep);
    char type[64];
    static char body[4096];
    bool ready = false;
    int64_t first = 0, last = 0, n = 0;
    for (;;) {
        int len = zmq_recv (sub, type, sizeof type - 1, 0);
        if (len < 0)
            break;
        type[len < (int) sizeof type - 1 ? len : (int) sizeof type - 1] = '\0';
        int more = 0;
        size_t ms = sizeof more;
        zmq_getsockopt (sub, ZMQ_RCVMORE, &more, &ms);
        if (more)
            zmq_recv (sub, body, sizeof body, 0);
        if (strcmp (type, "hello") == 0) {
            if (!ready && write (ready_fd, "R", 1) == 1)
                ready = true;
            continue;
        }
        if (strcmp (type, "end") == 0)
            break;
        last = pm_mono_us ();
        if (!first)
            first = last;
        n++;
    }
    double out[2] = { (double) n, (double) (last - first) / 1e6 };
    if (write (result_fd, out, sizeof out) != (ssize_t) sizeof out)
        _exit (1);
    zmq_close (sub);
    zmq_ctx_term (ctx);
    _exit (0);
}

/* ZeroMQ PUB -> SUB between two processes over ipc, as the daemons' events
 * travel: messages/s received, 0 on failure. *lost: messages not received. */
static double
s_zmq_rate (const char *dir, int messages, int64_t *lost)
{
    char ep[PATH_MAX + 32];
    snprintf (ep, sizeof ep, "ipc://%s/zmq-ceiling.pub", dir);
    int ready[2], result[2];
    if (pipe (ready) || pipe (result))
        return 0;
    void *ctx = zmq_ctx_new ();
    void *pub = zmq_socket (ctx, ZMQ_PUB);
    int hwm = 100000, nodrop = 1;
    zmq_setsockopt (pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (pub, ZMQ_XPUB_NODROP, &nodrop, sizeof nodrop); /* wait rather than drop */
    if (zmq_bind (pub, ep) != 0) {
        zmq_close (pub);
        zmq_ctx_term (ctx);
        return 0;
    }
    fflush (NULL);
    pid_t pid = fork ();
    if (pid == 0) {
        close (ready[0]);
        close (result[0]);
        s_zmq_sub (ep, ready[1], result[1]);
    }
    close (ready[1]);
    close (result[1]);
    char body[S_ZMQ_BYTES];
    memset (body, 'x', sizeof body);
    /* the slow joiner: hello until the child has one */
    for (int i = 0; i < 10000; i++) {
        zmq_send (pub, "hello", 5, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send (pub, body, 1, ZMQ_DONTWAIT);
        struct timeval tv = { 0, 1000 };
        fd_set fds;
        FD_ZERO (&fds);
        FD_SET (ready[0], &fds);
        if (select (ready[0] + 1, &fds, NULL, NULL, &tv) > 0)
            break;
    }
    char c;
    double rate = 0;
    if (read (ready[0], &c, 1) == 1) {
        for (int i = 0; i < messages; i++) {
            while (zmq_send (pub, "intake.unit.registered", 22, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
                usleep (20); /* at its high-water mark: wait, never drop */
            zmq_send (pub, body, sizeof body, 0);
        }
        zmq_send (pub, "end", 3, ZMQ_SNDMORE);
        zmq_send (pub, "", 0, 0);
        double out[2];
        if (read (result[0], out, sizeof out) == (ssize_t) sizeof out && out[1] > 0) {
            rate = out[0] / out[1];
            *lost = messages - (int64_t) out[0];
        }
    }
    kill (pid, SIGTERM);
    waitpid (pid, NULL, 0);
    close (ready[0]);
    close (result[0]);
    int linger = 0;
    zmq_setsockopt (pub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close (pub);
    zmq_ctx_term (ctx);
    return rate;
}

/* --- the daemons ----------------------------------------------------------------- */

/* Reads VmHWM, VmRSS and RssAnon (kB) and user + system CPU of d. */
static void
s_sample (s_daemon_t *d)
{
    if (d->pid <= 0)
        return;
    char path[64], line[256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) d->pid);
    FILE *f = fopen (path, "r");
    if (f) {
        while (fgets (line, sizeof line, f)) {
            long v;
            if (sscanf (line, "VmHWM: %ld", &v) == 1)
                d->hwm_kb = v;
            else if (sscanf (line, "VmRSS: %ld", &v) == 1)
                d->rss_kb = v;
            else if (sscanf (line, "RssAnon: %ld", &v) == 1) {
                d->anon_kb = v;
                if (v > d->anon_max_kb)
                    d->anon_max_kb = v;
            }
        }
        fclose (f);
    }
    snprintf (path, sizeof path, "/proc/%d/stat", (int) d->pid);
    f = fopen (path, "r");
    if (f) {
        char buf[1024];
        size_t n = fread (buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose (f);
        char *p = strrchr (buf, ')'); /* the name may hold spaces */
        unsigned long ut = 0, st = 0;
        if (p && sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            d->cpu_s = (double) (ut + st) / (double) sysconf (_SC_CLK_TCK);
    }
    snprintf (path, sizeof path, "/proc/%d/io", (int) d->pid);
    f = fopen (path, "r");
    if (f) {
        while (fgets (line, sizeof line, f)) {
            unsigned long long v;
            if (sscanf (line, "wchar: %llu", &v) == 1) /* write_bytes counts whole folios dirtied */
                d->written_mb = (double) v / 1048576.0;
        }
        fclose (f);
    }
}

static void
s_sample_all (s_bench_t *b)
{
    for (int i = 0; i < D_N; i++)
        s_sample (&b->d[i]);
}

/* Writes text to dir/name; false after saying why. */
static bool
s_write_file (const char *dir, const char *name, const char *text, char *path, size_t size)
{
    snprintf (path, size, "%s/%s", dir, name);
    FILE *f = fopen (path, "w");
    if (!f || fputs (text, f) < 0 || fclose (f) != 0) {
        s_die ("cannot write %s: %s", path, strerror (errno));
        return false;
    }
    return true;
}

/* A growing text buffer. */
typedef struct {
    char *s;
    size_t len, cap;
} s_buf_t;

static void __attribute__ ((format (printf, 2, 3)))
s_addf (s_buf_t *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start (ap, fmt);
        int n = vsnprintf (t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end (ap);
        if (t->s && (size_t) n < t->cap - t->len) {
            t->len += (size_t) n;
            return;
        }
        t->cap = (t->cap + (size_t) n + 1) * 2;
        t->s = pm_xrealloc (t->s, t->cap);
    }
}

/* The configuration the estates need: a fee schedule each (billing), a team
 * each (workorder), and the same people in notify's staff directory, named by
 * workorder's technician ids (what order events carry). */
static bool
s_write_config (s_bench_t *b)
{
    int total = b->estates + b->half_estates;
    s_buf_t sched = { 0 }, staff = { 0 }, nstaff = { 0 };
    s_addf (&staff, "technician,name,phone,team,team_name,role,estates,skills,on_shift\n");
    s_addf (&nstaff, "# generated by pm-movein-bench: NAME ROLE ESTATE TEAM PHONE EMAIL\n");
    for (int e = 0; e < total; e++) {
        const char *id = b->estate[e];
        s_addf (&sched,
                "[%s 2026-01-01]\nproperty_fee = 2.80\nmaintenance_fund = 60.00\nparking = 150.00\n"
                "prepaid_months = 12\nitem = 垃圾清运费, 300.00\ndeposit = 装修押金, 2000.00\n\n",
                id);
        s_addf (&staff, "L%03d,%s工,137%04d0000,G%03d,工程%03d组,lead,%s,water;electric;civil;general;elevator,yes\n",
                e, s_surnames[e % 20], e, e, e, id);
        /* notify knows staff by name within an estate, as workorder's events name them */
        s_addf (&nstaff, "%s工 team_lead %s 工程%03d组 137%04d0000 -\n", s_surnames[e % 20], id, e, e);
        s_addf (&nstaff, "%s工 technician %s 工程%03d组 137%04d0000 -\n", s_surnames[e % 20], id, e, e); /* leads repair too */
        s_addf (&nstaff, "%s经理 manager %s - 137%04d0009 -\n", s_surnames[(e + 7) % 20], id, e);
        for (int t = 1; t <= 4; t++) {
            s_addf (&staff, "T%03d%d,%s师傅,137%04d000%d,G%03d,工程%03d组,technician,%s,"
                            "water;electric;civil;general;elevator,yes\n",
                    e, t, s_surnames[(e + t) % 20], e, t, e, e, id);
            s_addf (&nstaff, "%s师傅 technician %s 工程%03d组 137%04d000%d -\n", s_surnames[(e + t) % 20], id, e, e, t);
        }
    }
    char path[PATH_MAX + 64];
    bool ok = s_write_file (b->dir, "schedules.conf", sched.s, path, sizeof path);
    ok = ok && setenv ("PM_BILLING_SCHEDULE", path, 1) == 0;
    ok = ok && s_write_file (b->dir, "staff.csv", staff.s, path, sizeof path);
    ok = ok && setenv ("PM_WORKORDER_STAFF", path, 1) == 0;
    ok = ok && s_write_file (b->dir, "notify-staff.conf", nstaff.s, path, sizeof path);
    ok = ok && setenv ("PM_NOTIFY_STAFF", path, 1) == 0;
    free (sched.s);
    free (staff.s);
    free (nstaff.s);
    return ok;
}

/* Starts every daemon from the build tree, its output in dir/log/. */
static bool
s_start (s_bench_t *b)
{
    char self[PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return false;
    self[n] = '\0';
    *strrchr (self, '/') = '\0';
    snprintf (b->bin, sizeof b->bin, "%s/../../services", self);
    char logdir[PATH_MAX + 8];
    snprintf (logdir, sizeof logdir, "%s/log", b->dir);
    mkdir (logdir, 0700);
    setenv ("PM_HOME", b->dir, 1);
    setenv ("PM_GENERAL_MANUAL_CLOCK", "true", 1);
    setenv ("PM_GENERAL_LOG_LEVEL", "warn", 1);
    setenv ("PM_GATEWAY_LISTEN", "127.0.0.1:0", 1);
    /* the SMS and email providers of a real move-in take thousands a second */
    setenv ("PM_NOTIFY_SMS_RATE", "0", 1);
    setenv ("PM_NOTIFY_EMAIL_RATE", "0", 1);
    for (int i = 0; i < D_N; i++) {
        char var[64];
        snprintf (var, sizeof var, "PM_%s_MAP_SIZE_MB", s_dname[i]);
        for (char *p = var; *p; p++)
            *p = (char) (*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        setenv (var, "4096", 1);
    }
    fflush (NULL);
    for (int i = 0; i < D_N; i++) {
        char exe[2 * PATH_MAX], log[2 * PATH_MAX], name[32];
        snprintf (name, sizeof name, "pm-%s", s_dname[i]);
        snprintf (exe, sizeof exe, "%s/%s/%s", b->bin, s_dname[i], name);
        snprintf (log, sizeof log, "%s/%s.log", logdir, s_dname[i]);
        pid_t pid = fork ();
        if (pid == 0) {
            FILE *f = freopen (log, "a", stderr);
            if (f)
                dup2 (fileno (stderr), 1);
            execl (exe, name, (char *) NULL);
            fprintf (stderr, "pm-movein-bench: cannot run %s: %s\n", exe, strerror (errno));
            _exit (127);
        }
        b->d[i].pid = pid;
    }
    for (int i = 0; i < D_N; i++) {
        char ep[PATH_MAX + 64];
        snprintf (ep, sizeof ep, "ipc://%s/run/%s.cmd", b->dir, s_dname[i]);
        b->d[i].work = pm_client_new (b->zctx, ep);
        b->d[i].ctl = pm_client_new (b->zctx, ep);
        if (!b->d[i].work || !b->d[i].ctl)
            return false;
    }
    return true;
}

static void
s_stop (s_bench_t *b)
{
    for (int i = 0; i < D_N; i++)
        if (b->d[i].pid > 0)
            kill (b->d[i].pid, SIGTERM);
    for (int i = 0; i < D_N; i++)
        if (b->d[i].pid > 0) {
            waitpid (b->d[i].pid, NULL, 0);
            b->d[i].pid = -1;
        }
}

/* Calls method with body on daemon i's control client; the reply (caller's)
 * or NULL. */
static Pm__V1__Reply *
s_ctl (s_bench_t *b, int i, const char *method, ProtobufCMessage *body, int timeout_ms)
{
    char id[27];
    pm_request_id (id);
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = id;
    req.method = (char *) method;
    req.actor = "movein-bench";
    if (body)
        pm_body_set (&req.base, method, body);
    Pm__V1__Reply *r = NULL;
    return pm_client_call (b->d[i].ctl, &req, timeout_ms, 1000, &r) == PM_OK ? r : NULL;
}

/* Sets every daemon's manual clock to t (RFC 3339 UTC). */
static bool
s_clock (s_bench_t *b, const char *t)
{
    for (int i = 0; i < D_N; i++) {
        Pm__V1__OpsClockRequest body = PM__V1__OPS_CLOCK_REQUEST__INIT;
        body.set_to = (char *) t;
        Pm__V1__Reply *r = s_ctl (b, i, "ops.clock", &body.base, 30000);
        bool ok = r && r->status == PM__V1__STATUS__OK;
        if (!ok)
            s_die ("%s: ops.clock %s: %s", s_dname[i], t, r ? r->message : "no answer");
        if (r)
            pm__v1__reply__free_unpacked (r, NULL);
        if (!ok)
            return false;
    }
    return true;
}

/* Every daemon's ops.ping: its last committed seq into seq[], and where each
 * stands in its upstreams (applied[consumer][upstream], -1: not consumed). */
static bool
s_ping_all (s_bench_t *b, uint64_t seq[D_N], int64_t applied[D_N][D_N])
{
    for (int i = 0; i < D_N; i++) {
        Pm__V1__Reply *r = s_ctl (b, i, "ops.ping", NULL, 30000);
        if (!r || r->body_case != PM__V1__REPLY__BODY_OPS_PING) {
            s_die ("%s did not answer ops.ping", s_dname[i]);
            if (r)
                pm__v1__reply__free_unpacked (r, NULL);
            return false;
        }
        seq[i] = r->ops_ping->last_seq;
        b->d[i].last_seq = seq[i];
        for (int u = 0; applied && u < D_N; u++) {
            applied[i][u] = -1;
            for (size_t k = 0; k < r->ops_ping->n_upstreams; k++)
                if (strcmp (r->ops_ping->upstreams[k]->source, s_dname[u]) == 0)
                    applied[i][u] = (int64_t) r->ops_ping->upstreams[k]->applied_seq;
        }
        pm__v1__reply__free_unpacked (r, NULL);
    }
    return true;
}

static bool
s_seqs (s_bench_t *b, uint64_t seq[D_N])
{
    return s_ping_all (b, seq, NULL);
}

/* notify's messages waiting (PENDING) and at the gateway (SENDING). */
static bool
s_notify_waiting (s_bench_t *b)
{
    Pm__V1__Reply *r = s_ctl (b, D_NOTIFY, "ops.metrics", NULL, 30000);
    if (!r || r->body_case != PM__V1__REPLY__BODY_OPS_METRICS) {
        s_die ("notify did not answer ops.metrics");
        if (r)
            pm__v1__reply__free_unpacked (r, NULL);
        return false;
    }
    for (size_t k = 0; k < r->ops_metrics->n_metrics; k++) {
        const Pm__V1__Metric *m = r->ops_metrics->metrics[k];
        if (strcmp (m->name, "notify_messages") != 0)
            continue;
        if (strcmp (m->labels, "state=\"PENDING\"") == 0)
            b->pending = (uint64_t) m->value;
        else if (strcmp (m->labels, "state=\"SENDING\"") == 0)
            b->sending = (uint64_t) m->value;
        else if (strcmp (m->labels, "state=\"SENT\"") == 0)
            b->msgs_sent = (int64_t) m->value;
    }
    pm__v1__reply__free_unpacked (r, NULL);
    return true;
}

/* Waits until every daemon has applied every event of its upstreams (as
 * pmctl sync does, from ops.ping), and the domain daemons no longer move
 * (notify's dispatcher may still be sending). drain: until notify has sent
 * everything that is due, too. The last edge to catch up goes to b->lag. */
static bool
s_sync (s_bench_t *b, bool drain)
{
    int64_t deadline = pm_mono_ms () + S_SYNC_S * 1000;
    uint64_t seq[D_N], again[D_N];
    int64_t applied[D_N][D_N];
    char lag[sizeof b->lag] = "";
    while (!s_interrupted) {
        s_sample_all (b);
        if (!s_ping_all (b, seq, applied))
            return false;
        size_t used = 0;
        lag[0] = '\0';
        for (int c = 0; c < D_N; c++)
            for (int u = 0; u < D_N; u++)
                if (applied[c][u] >= 0 && (uint64_t) applied[c][u] < seq[u] && used < sizeof lag)
                    used += (size_t) snprintf (lag + used, sizeof lag - used, "%s%s has %s:%" PRId64 " of %" PRIu64,
                                               used ? ", " : "", s_dname[c], s_dname[u], applied[c][u], seq[u]);
        if (lag[0])
            snprintf (b->lag, sizeof b->lag, "%s", lag);
        if (!lag[0] && (!drain || (s_notify_waiting (b) && b->pending == 0 && b->sending == 0))) {
            if (!s_seqs (b, again))
                return false;
            bool still = true;
            for (int i = 0; i < D_N; i++)
                if (again[i] != seq[i] && (drain || i != D_NOTIFY))
                    still = false;
            if (still)
                return true;
        }
        if (pm_mono_ms () > deadline) {
            s_die ("not in sync after %d s: %s%s", S_SYNC_S, lag,
                   drain && (b->pending || b->sending) ? " (notify still has messages to send)" : "");
            return false;
        }
        usleep (drain ? 50000 : 10000);
    }
    return false;
}

/* --- the units -------------------------------------------------------------------- */

/* The check character of a resident ID number's first 17 digits (GB 11643). */
static char
s_id_check (const char *d17)
{
    static const int w[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2 };
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (d17[i] - '0') * w[i];
    return "10X98765432"[sum % 11];
}

static int64_t
s_half_up (int64_t num, int64_t den)
{
    return (2 * num + den) / (2 * den);
}

/* Unit k of estate e: building of 100 units (25 floors of 4), an owner. */
static void
s_unit_init (s_bench_t *b, int e, int k)
{
    size_t i = (size_t) e * (size_t) b->units + (size_t) k;
    s_unit_t *u = &b->u[i];
    int building = k / S_PER_BUILDING + 1, m = k % S_PER_BUILDING, floor = m / 4 + 1;
    u->estate = e;
    snprintf (u->building, sizeof u->building, "%d", building);
    snprintf (u->floor, sizeof u->floor, "%d", floor);
    snprintf (u->unit, sizeof u->unit, "%d", floor * 100 + m % 4 + 1);
    snprintf (u->id, sizeof u->id, "%s/%s/%s", b->estate[e], u->building, u->unit);
    uint32_t h = s_mix ((uint32_t) i * 2654435761u + 1);
    u->area_cm2 = 6000 + (int64_t) (h % 9000);
    snprintf (u->area, sizeof u->area, "%" PRId64 ".%02" PRId64, u->area_cm2 / 100, u->area_cm2 % 100);
    snprintf (u->owner, sizeof u->owner, "%s%s", s_surnames[i % 20], s_given[(i / 20) % 30]);
    snprintf (u->phone, sizeof u->phone, "1%d%09zu", 3 + (int) (h >> 20) % 7, i);
    if (i % 2 == 0)
        snprintf (u->email, sizeof u->email, "owner%zu@example.com", i);
    /* a birth date from 1960-01-01 on and a sequence number: unique per unit */
    time_t born = (time_t) -315619200 + (time_t) (i / 1000) * 86400;
    struct tm tm;
    gmtime_r (&born, &tm);
    char d17[64];
    snprintf (d17, sizeof d17, "110105%04d%02d%02d%03u", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
              tm.tm_mday % 100, (unsigned) (i % 1000));
    snprintf (u->id_number, sizeof u->id_number, "%s%c", d17, s_id_check (d17));
    /* the move-in invoice of the schedule written above: 物业费 12 months,
     * 维修基金, 垃圾清运费, 装修押金, each line rounded half-up */
    u->invoice_fen = s_half_up (u->area_cm2 * 280 * 12, 100) + s_half_up (u->area_cm2 * 6000, 100) + 30000 + 200000;
    u->defects = b->defect_every > 0 && s_mix ((uint32_t) i ^ 0x5bd1e995u) % (uint32_t) b->defect_every == 0
                     ? (uint8_t) (1 + s_mix ((uint32_t) i + 77) % S_MAX_DEFECTS)
                     : 0;
}

/* --- requests in flight --------------------------------------------------------- */

/* A new request id: time-ordered like pm_request_id's ULIDs (the run's start,
 * then a counter), without a getrandom() per request. */
static void
s_request_id (s_bench_t *b, char id[40])
{
    snprintf (id, 40, "%s%012" PRIu64, b->id_prefix, ++b->ids);
}

/* Sends method with body to daemon i for f's job. */
static void
s_send (s_bench_t *b, s_flight_t *f, int i, const char *method, ProtobufCMessage *body)
{
    char id[40];
    s_request_id (b, id);
    Pm__V1__Request req = PM__V1__REQUEST__INIT;
    req.id = id;
    req.method = (char *) method;
    req.actor = "movein-bench";
    pm_body_set (&req.base, method, body);
    f->method = method;
    if (!(f->paced && f->step == 0))
        f->at_us = pm_mono_us ();
    if (pm_inflight_add (b->fl, b->d[i].work, &req, S_DEADLINE_MS, f) != PM_OK) {
        s_die ("cannot send %s to %s: %s", method, s_dname[i], zmq_strerror (errno));
        exit (1);
    }
}

/* Counts a failed job of the running phase and says why (the first few). */
static void __attribute__ ((format (printf, 3, 4)))
s_fail (s_bench_t *b, s_flight_t *f, const char *fmt, ...)
{
    s_phase_t *p = &b->ph[b->phase];
    p->failed++;
    if (p->shown++ >= S_FAILS_SHOWN)
        return;
    va_list ap;
    va_start (ap, fmt);
    fprintf (stderr, "pm-movein-bench: %s: %s (job %d, step %d): ", s_pname[b->phase], f->method ? f->method : "",
             f->job, f->step);
    vfprintf (stderr, fmt, ap);
    fputc ('\n', stderr);
    va_end (ap);
}

static void
s_phase_begin (s_bench_t *b, int phase)
{
    s_phase_t *p = &b->ph[phase];
    b->phase = phase;
    p->ran = true;
    s_sample_all (b);
    for (int i = 0; i < D_N; i++) {
        p->cpu0[i] = b->d[i].cpu_s;
        p->wr0[i] = b->d[i].written_mb;
    }
    p->t0_us = pm_mono_us ();
}

static void
s_phase_end (s_bench_t *b, int phase, int64_t t_cmds_end)
{
    s_phase_t *p = &b->ph[phase];
    p->t1_us = t_cmds_end;
    p->sync_us = pm_mono_us () - t_cmds_end;
    s_sample_all (b);
    for (int i = 0; i < D_N; i++) {
        p->cpu[i] = b->d[i].cpu_s - p->cpu0[i];
        p->wr[i] = b->d[i].written_mb - p->wr0[i];
    }
    qsort (p->lat_us, p->nlat, sizeof *p->lat_us, s_cmp);
}

static void
s_latency (s_phase_t *p, int64_t us)
{
    if (p->nlat == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 4096;
        p->lat_us = pm_xrealloc (p->lat_us, p->cap * sizeof *p->lat_us);
    }
    p->lat_us[p->nlat++] = us;
}

/* Runs njobs jobs of fn (subjects[j] is job j's unit, estate or chunk):
 * inflight of them at a time, or, at rate > 0, each started at its time
 * (open loop: t0 + j / rate) however many are in flight. The time the last
 * reply came. */
static int64_t
s_run (s_bench_t *b, int *subjects, int njobs, s_step_fn fn, double rate)
{
    s_phase_t *p = &b->ph[b->phase];
    b->subjects = subjects;
    p->rate = rate;
    int next = 0, active = 0;
    int64_t t0 = pm_mono_us ();
    while ((next < njobs || active > 0) && !s_interrupted) {
        int64_t now = pm_mono_us ();
        while (next < njobs && (rate > 0 ? t0 + (int64_t) ((double) next * 1e6 / rate) <= now : active < b->inflight)) {
            s_flight_t *f = pm_xcalloc (1, sizeof *f);
            f->job = next;
            f->paced = rate > 0;
            f->at_us = rate > 0 ? t0 + (int64_t) ((double) next * 1e6 / rate) : now;
            next++;
            if (fn (b, f, NULL))
                active++;
            else
                free (f);
        }
        int wait_ms = -1;
        if (rate > 0 && next < njobs) {
            int64_t due = t0 + (int64_t) ((double) next * 1e6 / rate);
            wait_ms = due > now ? (int) ((due - now) / 1000) : 0;
        }
        if (active == 0)
            continue;
        Pm__V1__Reply *r = NULL;
        void *user = NULL;
        int rc = pm_inflight_wait (b->fl, wait_ms, &r, &user);
        if (rc == PM_ETIMEDOUT || (rc == PM_EIO && errno == EINTR))
            continue;
        if (rc != PM_OK) {
            s_die ("receiving: %s", pm_strerror (rc));
            exit (1);
        }
        s_flight_t *f = user;
        if (r)
            s_latency (p, pm_mono_us () - f->at_us);
        bool more = false;
        if (!r)
            s_fail (b, f, "no answer in %d s", S_DEADLINE_MS / 1000);
        else if (r->status != PM__V1__STATUS__OK)
            s_fail (b, f, "%s: %s", pm_status_name (r->status), r->message);
        else {
            f->step++;
            more = fn (b, f, r);
        }
        if (r)
            pm__v1__reply__free_unpacked (r, NULL);
        if (!more) {
            active--;
            free (f);
        }
    }
    return pm_mono_us ();
}

/* --- the steps of each phase ------------------------------------------------------- */

static s_unit_t *
s_job_unit (s_bench_t *b, const s_flight_t *f)
{
    return &b->u[b->subjects[f->job]];
}

/* A chunk of S_CHUNK_ROWS rows of the units from subjects[job] * S_CHUNK_ROWS on. */
static bool
s_step_import (s_bench_t *b, s_flight_t *f, const Pm__V1__Reply *prev)
{
    static Pm__V1__ImportRow rows[S_CHUNK_ROWS];
    static Pm__V1__ImportRow *rowp[S_CHUNK_ROWS];
    static const char *const columns[] = { "estate_id", "estate_name", "building", "unit", "floor",
                                           "area_m2", "owner_name", "phone", "email", "id_number" };
    int first = b->subjects[f->job];       /* a unit index: chunks never cross estates */
    int e = b->u[first].estate;
    int end = (e + 1) * b->units, n = end - first < S_CHUNK_ROWS ? end - first : S_CHUNK_ROWS;
    if (prev) {
        const Pm__V1__IntakeImportReply *ir = (const void *) pm_body_get (&prev->base, "intake.import");
        if (!ir || ir->created != (uint32_t) n)
            s_fail (b, f, "created %u of %d rows (%u rejected%s%s)", ir ? ir->created : 0, n, ir ? ir->rejected : 0,
                    ir && ir->n_rejections ? ": " : "", ir && ir->n_rejections ? ir->rejections[0]->reason : "");
        return false;
    }
    char name[32], batch[32], file[48];
    snprintf (name, sizeof name, "示范花园%s", b->estate[e] + 1);
    snprintf (batch, sizeof batch, "bench:%s", b->estate[e]);
    snprintf (file, sizeof file, "/bench/%s.csv", b->estate[e]);
    for (int i = 0; i < n; i++) {
        const s_unit_t *u = &b->u[first + i];
        Pm__V1__ImportRow *r = &rows[i];
        pm__v1__import_row__init (r);
        r->line = (uint32_t) (first - e * b->units + i + 2);
        r->estate_id = b->estate[e];
        r->estate_name = name;
        r->building = (char *) u->building;
        r->unit = (char *) u->unit;
        r->floor = (char *) u->floor;
        r->area_m2 = (char *) u->area;
        r->owner_name = (char *) u->owner;
        r->phone = (char *) u->phone;
        r->email = (char *) u->email;
        r->id_number = (char *) u->id_number;
        rowp[i] = r;
    }
    Pm__V1__IntakeImportRequest body = PM__V1__INTAKE_IMPORT_REQUEST__INIT;
    body.batch_id = batch;
    body.file_name = file;
    body.chunk_no = (uint32_t) ((first - e * b->units) / S_CHUNK_ROWS + 1);
    body.columns = (char **) columns;
    body.n_columns = sizeof columns / sizeof columns[0];
    body.rows = rowp;
    body.n_rows = (size_t) n;
    s_send (b, f, D_INTAKE, "intake.import", &body.base);
    return true;
}

/* The move-in notice of estate subjects[job]. */
static bool
s_step_notice (s_bench_t *b, s_flight_t *f, const Pm__V1__Reply *prev)
{
    int e = b->subjects[f->job];
    if (prev) {
        const Pm__V1__IntakeNoticeSendReply *nr = (const void *) pm_body_get (&prev->base, "intake.notice.send");
        if (!nr || nr->requested != (uint32_t) b->units)
            s_fail (b, f, "%s: %u notices requested of %d", b->estate[e], nr ? nr->requested : 0, b->units);
        return false;
    }
    Pm__V1__IntakeNoticeSendRequest body = PM__V1__INTAKE_NOTICE_SEND_REQUEST__INIT;
    body.estate_id = b->estate[e];
    body.window = e < b->estates ? S_DAY " 08:00-18:00" : S_HALF_DAY " 08:00-18:00";
    body.place = "会所一层物业服务中心";
    body.fees_note = "物业费12个月、维修基金、垃圾清运费300元、装修押金2000元";
    s_send (b, f, D_INTAKE, "intake.notice.send", &body.base);
    return true;
}

/* Estate subjects[job]'s move-in day: 20 half-hour slots, enough counters. */
static bool
s_step_plan (s_bench_t *b, s_flight_t *f, const Pm__V1__Reply *prev)
{
    int e = b->subjects[f->job];
    if (prev) {
        const Pm__V1__IntakeSchedulePlanReply *pr = (const void *) pm_body_get (&prev->base, "intake.schedule.plan");
        if (!pr || pr->booked != (uint32_t) b->units)
            s_fail (b, f, "%s: %u booked of %d (%u waitlisted)", b->estate[e], pr ? pr->booked : 0, b->units,
                    pr ? pr->waitlisted : 0);
        return false;
    }
    Pm__V1__PlanDay day = PM__V1__PLAN_DAY__INIT;
    Pm__V1__PlanDay *days[1] = { &day };
    day.date = e < b->estates ? S_DAY : S_HALF_DAY;
    Pm__V1__IntakeSchedulePlanRequest body = PM__V1__INTAKE_SCHEDULE_PLAN_REQUEST__INIT;
    body.estate_id = b->estate[e];
    body.days = days;
    body.n_days = 1;
    body.opens = "08:00";
    body.closes = "18:00";
    body.slot_minutes = 30;
    body.counters = 10;
    body.per_counter = (uint32_t) ((b->units + 199) / 200); /* 20 slots x 10 counters */
    body.place = "会所一层物业服务中心";
    s_send (b, f, D_INTAKE, "intake.schedule.plan", &body.base);
    return true;
}

/* The owner of unit subjects[job] at the counter. */
static bool
s_step_checkin (s_bench_t *b, s_flight_t *f, const Pm__V1__Reply *prev)
{
    if (prev)
        return false;
    s_unit_t *u = s_job_unit (b, f);
    Pm__V1__IntakeCheckinRequest body = PM__V1__INTAKE_CHECKIN_REQUEST__INIT;
    body.unit_id = u->id;
    body.owner_index = 0;
    body.id_number = u->id_number;
    body.documents = (char **) s_documents;
    body.n_documents = sizeof s_documents / sizeof s_documents[0];
    body.agreements = (char **) s_agreements;
    body.n_agreements = sizeof s_agreements / sizeof s_agreements[0];
    s_send (b, f, D_INTAKE, "intake.checkin", &body.base);
    return true;
}

/* Round 1: start, each defect, the rest OK, complete. */
static bool
s_step_inspect (s_bench_t *b, s_flight_t *f, const Pm__V1__Reply *prev)
{
    s_unit_t *u = s_job_unit (b, f);
    int d = u->defects;
    char inspector[16];
    snprintf (inspector, sizeof inspector, "验房员%s", b->estate[u->estate] + 1);
    if (f->step == 0) {
        Pm__V1__InspectionRoundStartRequest body = PM__V1__INSPECTION_ROUND_START_REQUEST__INIT;
        body.unit_id = u->id;
        body.inspector = inspector;
        s_send (b, f, D_INSPECTION, "inspection.round.start", &body.base);
    }
    else if (f->step <= d) {
        int k = (int) (s_mix ((uint32_t) (u - b->u) * 31u + (uint32_t) f->step) % 5);
        k = (k + f->step) % 5; /* different lines for a unit's defects */
        Pm__V1__InspectionDefectRecordRequest body = PM__V1__INSPECTION_DEFECT_RECORD_REQUEST__INIT;
        body.unit_id = u->id;
        body.room = (char *) s_defect_kinds[k].room;
        body.category = (char *) s_defect_kinds[k].category;
        body.severity = f->step == 1 ? PM__V1__SEVERITY__MAJOR : PM__V1__SEVERITY__MINOR;
        body.description = (char *) s_defect_kinds[k].description;
        s_send (b, f, D_INSPECTION, "inspection.defect.record", &body.base);
    }
    else if (f->step == d + 1) {
        Pm__V1__InspectionItemsRecordRequest body = PM__V1__INSPECTION_ITEMS_RECORD_REQUEST__INIT;
        body.unit_id = u->id;
        body.remaining_ok = true;
        s_send (b, f, D_INSPECTION, "inspection.items.record", &body.base);
    }
    else if (f->step == d + 2) {
        Pm__V1__InspectionRoundCompleteRequest body = PM__V1__INSPECTION_ROUND_COMPLETE_REQUEST__INIT;
        body.unit_id = u->id;
        s_send (b, f, D_INSPECTION, "inspection.round.complete", &body.base);
    }
    else {
        const Pm__V1__InspectionRoundCompleteReply *cr =
            (const void *) pm_body_get (&prev->base, "inspection.round.complete");
        if (!cr || !cr->round || cr->round->passed != (d == 0))
            s_fail (b, f, "%s: round 1 %s with %d defects", u->id,
                    cr && cr->round ? (cr->round->passed ? "passed" : "failed") : "?", d);
        return false;
    }
    return true;
}

/* The technician's list for the unit (workorder.unit.get), then each order
 * started and done. */
static bool
s_step_rectify (s_bench_t *b, s_flight_t *f, const Pm__V1__Reply *prev)
{
    s_unit_t *u = s_job_unit (b, f);
    if (f->step == 0) {
        Pm__V1__WorkorderUnitGetRequest body = PM__V1__WORKORDER_UNIT_GET_REQUEST__INIT;
        body.unit_id = u->id;
        s_send (b, f, D_WORKORDER, "workorder.unit.get", &body.base);
        return true;
    }
    if (f->step == 1) {
        const Pm__V1__WorkorderUnitGetReply *wr = (const void *) pm_body_get (&prev->base, "workorder.unit.get");
        u->nids = 0;
        for (size_t i = 0; wr && i < wr->n_orders && u->nids < S_MAX_DEFECTS; i++) {
            const Pm__V1__WorkOrder *o = wr->orders[i];
            if (o->source == PM__V1__ORDER_SOURCE__DEFECT && o->state == PM__V1__ORDER_STATE__ASSIGNED)
                snprintf (u->ids[u->nids++], sizeof u->ids[0], "%s", o->order_id);
        }
        if (u->nids != u->defects) {
            s_fail (b, f, "%s: %u assigned defect orders, %u defects", u->id, u->nids, u->defects);
            return false;
        }
    }
    int k = (f->step - 1) / 2; /* steps 1, 2: order 0's start, done; ... */
    if (k >= u->nids)
        return false;
    if ((f->step - 1) % 2 == 0) {
        Pm__V1__WorkorderStartRequest body = PM__V1__WORKORDER_START_REQUEST__INIT;
        body.order_id = u->ids[k];
        s_send (b, f, D_WORKORDER, "workorder.start", &body.base);
    }
    else {
        Pm__V1__WorkorderDoneRequest body = PM__V1__WORKORDER_DONE_REQUEST__INIT;
        body.order_id = u->ids[k];
        body.note = "已按规范整改";
        s_send (b, f, D_WORKORDER, "workorder.done", &body.base);
    }
    return true;
}

/* Round 2: start (it lists the rectified defects), verify each, complete. */
static bool
s_step_reinspect (s_bench_t *b, s_flight_t *f, const Pm__V1__Reply *prev)
{
    s_unit_t *u = s_job_unit (b, f);
    if (f->step == 0) {
        Pm__V1__InspectionRoundStartRequest body = PM__V1__INSPECTION_ROUND_START_REQUEST__INIT;
        body.unit_id = u->id;
        body.inspector = "复验员";
        s_send (b, f, D_INSPECTION, "inspection.round.start", &body.base);
        return true;
    }
    if (f->step == 1) {
        const Pm__V1__InspectionRoundStartReply *sr =
            (const void *) pm_body_get (&prev->base, "inspection.round.start");
        u->nids = 0;
        for (size_t i = 0; sr && i < sr->n_to_verify && u->nids < S_MAX_DEFECTS; i++)
            snprintf (u->ids[u->nids++], sizeof u->ids[0], "%s", sr->to_verify[i]);
        if (u->nids != u->defects) {
            s_fail (b, f, "%s: %u defects to verify, %u recorded", u->id, u->nids, u->defects);
            return false;
        }
    }
    int k = f->step - 1;
    if (k < u->nids) {
        Pm__V1__InspectionDefectVerifyRequest body = PM__V1__INSPECTION_DEFECT_VERIFY_REQUEST__INIT;
        body.defect_id = u->ids[k];
        s_send (b, f, D_INSPECTION, "inspection.defect.verify", &body.base);
    }
    else if (k == u->nids) {
        Pm__V1__InspectionRoundCompleteRequest body = PM__V1__INSPECTION_ROUND_COMPLETE_REQUEST__INIT;
        body.unit_id = u->id;
        s_send (b, f, D_INSPECTION, "inspection.round.complete", &body.base);
    }
    else {
        const Pm__V1__InspectionRoundCompleteReply *cr =
            (const void *) pm_body_get (&prev->base, "inspection.round.complete");
        if (!cr || !cr->round || !cr->round->passed)
            s_fail (b, f, "%s: re-inspection did not pass", u->id);
        return false;
    }
    return true;
}

/* The move-in invoice paid at the counter, by card. */
static bool
s_step_pay (s_bench_t *b, s_flight_t *f, const Pm__V1__Reply *prev)
{
    s_unit_t *u = s_job_unit (b, f);
    if (prev) {
        const Pm__V1__BillingPaymentRecordReply *pr =
            (const void *) pm_body_get (&prev->base, "billing.payment.record");
        if (!pr || pr->n_invoices != 1 || pr->invoices[0]->state != PM__V1__INVOICE_STATE__SETTLED)
            s_fail (b, f, "%s: %.2f paid, the invoice is not settled (%s)", u->id, (double) u->invoice_fen / 100,
                    pr && pr->n_invoices ? "open" : "no invoice");
        return false;
    }
    char ref[64];
    snprintf (ref, sizeof ref, "POS-%s", u->id);
    Pm__V1__BillingPaymentRecordRequest body = PM__V1__BILLING_PAYMENT_RECORD_REQUEST__INIT;
    body.unit_id = u->id;
    body.amount_fen = u->invoice_fen;
    body.channel = "counter_card";
    body.external_ref = ref;
    body.payer = u->owner;
    s_send (b, f, D_BILLING, "billing.payment.record", &body.base);
    return true;
}

static bool
s_step_keys (s_bench_t *b, s_flight_t *f, const Pm__V1__Reply *prev)
{
    if (prev)
        return false;
    s_unit_t *u = s_job_unit (b, f);
    Pm__V1__IntakeKeysHandoverRequest body = PM__V1__INTAKE_KEYS_HANDOVER_REQUEST__INIT;
    body.unit_id = u->id;
    body.key_set = "A";
    body.keys = 3;
    body.received_by = u->owner;
    s_send (b, f, D_INTAKE, "intake.keys.handover", &body.base);
    return true;
}

/* --- the run ---------------------------------------------------------------------- */

/* Runs phase: njobs of fn, then waits for the projections. */
static bool
s_phase (s_bench_t *b, int phase, int *subjects, int njobs, s_step_fn fn, double rate, bool sync)
{
    s_phase_begin (b, phase);
    int64_t end = s_run (b, subjects, njobs, fn, rate);
    b->lag[0] = '\0';
    bool ok = !s_interrupted && (!sync || s_sync (b, false));
    s_phase_end (b, phase, end);
    s_phase_t *p = &b->ph[phase];
    double secs = (double) (p->t1_us - p->t0_us) / 1e6;
    fprintf (stderr, "  %-14s %7zu commands in %6.2f s (%8.0f/s), p99 %6.1f ms; in sync %5.2f s later%s%s%s\n",
             s_pname[phase], p->nlat, secs, secs > 0 ? (double) p->nlat / secs : 0, s_ms_at (p->lat_us, p->nlat, 0.99),
             (double) p->sync_us / 1e6, p->failed ? " (FAILURES)" : "", b->lag[0] ? "; last behind: " : "", b->lag);
    return ok && p->failed == 0;
}

/* The jobs of the units of estates [e0, e1): unit indices; only the
 * defective ones when defective. */
static int *
s_unit_jobs (s_bench_t *b, int e0, int e1, bool defective, int *n)
{
    int *v = pm_xcalloc ((size_t) (e1 - e0) * (size_t) b->units + 1, sizeof *v);
    *n = 0;
    for (int i = e0 * b->units; i < e1 * b->units; i++)
        if (!defective || b->u[i].defects)
            v[(*n)++] = i;
    return v;
}

/* Import, notices and plan of estates [e0, e1) (the phases given). */
static bool
s_setup (s_bench_t *b, int e0, int e1, int p_import, int p_notices, int p_plan)
{
    int nchunks = 0, *chunks = pm_xcalloc ((size_t) (e1 - e0) * (size_t) (b->units / S_CHUNK_ROWS + 2), sizeof *chunks);
    for (int e = e0; e < e1; e++)
        for (int k = 0; k < b->units; k += S_CHUNK_ROWS)
            chunks[nchunks++] = e * b->units + k;
    int *estates = pm_xcalloc ((size_t) (e1 - e0), sizeof *estates);
    for (int e = e0; e < e1; e++)
        estates[e - e0] = e;
    bool ok = s_phase (b, p_import, chunks, nchunks, s_step_import, 0, p_import != p_notices)
              && s_phase (b, p_notices, estates, e1 - e0, s_step_notice, 0, p_notices != p_plan)
              && s_phase (b, p_plan, estates, e1 - e0, s_step_plan, 0, true);
    free (chunks);
    free (estates);
    return ok;
}

/* The move-in of the main estates. */
static bool
s_movein (s_bench_t *b)
{
    int n, nd;
    int *all = s_unit_jobs (b, 0, b->estates, false, &n);
    int *bad = s_unit_jobs (b, 0, b->estates, true, &nd);
    bool ok = s_setup (b, 0, b->estates, P_IMPORT, P_NOTICES, P_PLAN)
              && s_clock (b, S_T_EVE) && s_clock (b, S_T_DAY)
              && s_phase (b, P_CHECKIN, all, n, s_step_checkin, 0, true)
              && s_phase (b, P_INSPECT, all, n, s_step_inspect, 0, true)
              && s_phase (b, P_RECTIFY, bad, nd, s_step_rectify, 0, true)
              && s_clock (b, S_T_NEXT)
              && s_phase (b, P_REINSPECT, bad, nd, s_step_reinspect, 0, false)
              && s_phase (b, P_PAY, all, n, s_step_pay, 0, true)
              && s_phase (b, P_KEYS, all, n, s_step_keys, 0, true);
    if (ok) { /* the messages: every one due sent */
        s_phase_begin (b, P_DRAIN);
        ok = s_sync (b, true);
        s_phase_end (b, P_DRAIN, b->ph[P_DRAIN].t0_us);
        fprintf (stderr, "  %-14s every due message sent %.2f s later\n", s_pname[P_DRAIN],
                 (double) b->ph[P_DRAIN].sync_us / 1e6);
    }
    free (all);
    free (bad);
    return ok;
}

/* The latency run: half_estates more estates set up, then their check-ins
 * at rate a second, on schedule. */
static bool
s_half (s_bench_t *b, double rate)
{
    int e0 = b->estates, e1 = b->estates + b->half_estates, n;
    if (!s_setup (b, e0, e1, P_HALF_SETUP, P_HALF_SETUP, P_HALF_SETUP) || !s_clock (b, S_T_HALF))
        return false;
    int *all = s_unit_jobs (b, e0, e1, false, &n);
    bool ok = s_phase (b, P_HALF, all, n, s_step_checkin, rate, true);
    free (all);
    return ok;
}

/* Prints every non-empty queue of every daemon (ops.queues): after a
 * complete move-in, work left waiting on people is worth a look. */
static void
s_print_queues (s_bench_t *b)
{
    for (int i = 0; i < D_N; i++) {
        Pm__V1__OpsQueuesRequest body = PM__V1__OPS_QUEUES_REQUEST__INIT;
        body.limit = 2;
        Pm__V1__Reply *r = s_ctl (b, i, "ops.queues", &body.base, 30000);
        if (!r || r->body_case != PM__V1__REPLY__BODY_OPS_QUEUES) {
            if (r)
                pm__v1__reply__free_unpacked (r, NULL);
            continue;
        }
        for (size_t q = 0; q < r->ops_queues->n_queues; q++) {
            const Pm__V1__Queue *qu = r->ops_queues->queues[q];
            if (!qu->count)
                continue;
            printf ("queue %s/%s: %" PRIu64 "", s_dname[i], qu->name, qu->count);
            for (size_t k = 0; k < qu->n_items; k++)
                printf ("%s %s: %s", k ? ";" : " e.g.", qu->items[k]->key, qu->items[k]->reason);
            printf ("\n");
        }
        pm__v1__reply__free_unpacked (r, NULL);
    }
}

/* --- the report --------------------------------------------------------------------- */

/* A daemon's runtime metrics at the end. */
typedef struct {
    double used_bytes, commit_p50, commit_p99, commit_max, batch_mean, batch_max, turn_p99, turn_max, commits;
    char states[256];                 /* notify: its messages by state */
    double metrics_ms;                /* what one ops.metrics call took (median of 5) */
} s_rt_t;

static void
s_runtime (s_bench_t *b, int i, s_rt_t *rt)
{
    memset (rt, 0, sizeof *rt);
    int64_t took[5];
    for (int k = 0; k < 5; k++) {
        int64_t t0 = pm_mono_us ();
        Pm__V1__Reply *x = s_ctl (b, i, "ops.metrics", NULL, 30000);
        took[k] = pm_mono_us () - t0;
        if (x)
            pm__v1__reply__free_unpacked (x, NULL);
    }
    qsort (took, 5, sizeof took[0], s_cmp);
    rt->metrics_ms = (double) took[2] / 1000.0;
    Pm__V1__Reply *r = s_ctl (b, i, "ops.metrics", NULL, 30000);
    if (!r || r->body_case != PM__V1__REPLY__BODY_OPS_METRICS)
        goto done;
    for (size_t k = 0; k < r->ops_metrics->n_metrics; k++) {
        const Pm__V1__Metric *m = r->ops_metrics->metrics[k];
        if (strcmp (m->name, "pm_map_used_bytes") == 0)
            rt->used_bytes = m->value;
        else if (strcmp (m->name, "pm_commit_us") == 0) {
            rt->commits = (double) m->count;
            rt->commit_p50 = m->p50;
            rt->commit_p99 = m->p99;
            rt->commit_max = m->max;
        }
        else if (strcmp (m->name, "pm_batch_messages") == 0) {
            rt->batch_mean = m->count ? m->value / (double) m->count : 0;
            rt->batch_max = m->max;
        }
        else if (strcmp (m->name, "pm_loop_turn_us") == 0) {
            rt->turn_p99 = m->p99;
            rt->turn_max = m->max;
        }
        else if (strcmp (m->name, "notify_messages") == 0) {
            size_t used = strlen (rt->states);
            char state[32] = "";
            sscanf (m->labels, "state=\"%31[^\"]\"", state);
            snprintf (rt->states + used, sizeof rt->states - used, "%s%s %.0f", used ? ", " : "", state, m->value);
        }
    }
done:
    if (r)
        pm__v1__reply__free_unpacked (r, NULL);
}

static void
s_report (s_bench_t *b, const s_rt_t rt[D_N], int defective, double lmdb_before, double lmdb_after, double zmq_rate,
          int64_t zmq_lost, double peak, bool half_ok)
{
    const s_phase_t *first = &b->ph[P_IMPORT], *keys = &b->ph[P_KEYS], *drain = &b->ph[P_DRAIN];
    double e2e = (double) (keys->t1_us + keys->sync_us - first->t0_us) / 1e6;
    double e2e_drain = (double) (drain->t0_us + drain->sync_us - first->t0_us) / 1e6;
    uint64_t events = 0;
    for (int i = 0; i < D_N; i++)
        events += b->d[i].last_seq;
    int units = b->estates * b->units;
    double lmdb = (lmdb_before + lmdb_after) / 2;
    size_t nall = 0;
    for (int p = 0; p < P_MAIN; p++)
        nall += b->ph[p].nlat;
    int64_t *all = pm_xcalloc (nall + 1, sizeof *all);
    nall = 0;
    for (int p = 0; p < P_MAIN; p++) {
        memcpy (all + nall, b->ph[p].lat_us, b->ph[p].nlat * sizeof *all);
        nall += b->ph[p].nlat;
    }
    qsort (all, nall, sizeof *all, s_cmp);
    double load[3] = { 0 };
    getloadavg (load, 3);
    struct rusage self;
    getrusage (RUSAGE_SELF, &self);
    double self_cpu = (double) self.ru_utime.tv_sec + (double) self.ru_stime.tv_sec
                      + (double) (self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;

    printf ("\nmove-in of %d estates x %d units = %d units (%d with defects), %d in flight per phase, durable\n",
            b->estates, b->units, units, defective, b->inflight);
    printf ("machine: %ld cores, load average %.2f %.2f %.2f at the end\n", sysconf (_SC_NPROCESSORS_ONLN), load[0],
            load[1], load[2]);
    printf ("ceilings: ZeroMQ PUB->SUB %.0f messages/s (%d-byte events, 2 processes, %" PRId64 " lost); "
            "LMDB %.0f durable commits/s before, %.0f after (mean %.0f)\n",
            zmq_rate, S_ZMQ_BYTES, zmq_lost, lmdb_before, lmdb_after, lmdb);
    printf ("end to end (import to keys, every projection in sync): %.2f s = %.0f units/s; to the last message sent: "
            "%.2f s\n",
            e2e, e2e > 0 ? units / e2e : 0, e2e_drain);
    printf ("events: %" PRIu64 " committed by the six daemons = %.0f events/s (%.3f of the PUB->SUB ceiling); "
            "%" PRId64 " messages sent by notify\n",
            events, e2e_drain > 0 ? (double) events / e2e_drain : 0,
            e2e_drain > 0 && zmq_rate > 0 ? (double) events / e2e_drain / zmq_rate : 0, b->msgs_sent);
    printf ("commands: %zu, %.0f/s over the run (%.1fx one commit per command at the LMDB mean); latency p50 %.2f ms, "
            "p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
            nall, e2e > 0 ? (double) nall / e2e : 0, e2e > 0 && lmdb > 0 ? (double) nall / e2e / lmdb : 0,
            s_ms_at (all, nall, 0.5), s_ms_at (all, nall, 0.99), s_ms_at (all, nall, 0.999), s_ms_at (all, nall, 1));
    printf ("\n%-14s %8s %8s %9s %8s %8s %8s %8s  %s\n", "phase", "commands", "secs", "cmds/s", "p50 ms", "p99 ms",
            "p99.9 ms", "sync s", "daemon CPU s | MiB written (intake insp wo bill notify gw)");
    for (int p = 0; p < P_N; p++) {
        const s_phase_t *ph = &b->ph[p];
        if (!ph->ran)
            continue;
        double secs = (double) (ph->t1_us - ph->t0_us) / 1e6;
        printf ("%-14s %8zu %8.2f %9.0f %8.2f %8.2f %8.2f %8.2f  %.1f %.1f %.1f %.1f %.1f %.1f | %.0f %.0f %.0f %.0f %.0f "
                "%.0f\n",
                s_pname[p], ph->nlat, secs, secs > 0 ? (double) ph->nlat / secs : 0, s_ms_at (ph->lat_us, ph->nlat, 0.5),
                s_ms_at (ph->lat_us, ph->nlat, 0.99), s_ms_at (ph->lat_us, ph->nlat, 0.999),
                (double) ph->sync_us / 1e6, ph->cpu[0], ph->cpu[1], ph->cpu[2], ph->cpu[3], ph->cpu[4], ph->cpu[5],
                ph->wr[0], ph->wr[1], ph->wr[2], ph->wr[3], ph->wr[4], ph->wr[5]);
    }
    printf ("\n%-11s %7s %9s %9s %9s %9s %8s %9s %8s %6s %14s %11s\n", "daemon", "CPU s", "peak RSS", "RssAnon",
            "max anon", "LMDB MiB", "written", "events", "commits", "batch", "commit p50/p99", "turn p99/max");
    for (int i = 0; i < D_N; i++) {
        printf ("%-11s %7.1f %7.1fMi %7.1fMi %7.1fMi %9.1f %6.0fMi %9" PRIu64 " %8.0f %6.0f %6.1f/%5.1fms %5.0f/%.0fms\n",
                s_dname[i], b->d[i].cpu_s, b->d[i].hwm_kb / 1024.0, b->d[i].anon_kb / 1024.0,
                b->d[i].anon_max_kb / 1024.0, rt[i].used_bytes / 1048576.0, b->d[i].written_mb, b->d[i].last_seq,
                rt[i].commits, rt[i].batch_mean, rt[i].commit_p50 / 1000.0, rt[i].commit_p99 / 1000.0,
                rt[i].turn_p99 / 1000.0, rt[i].turn_max / 1000.0);
    }
    printf ("ops.metrics takes");
    for (int i = 0; i < D_N; i++)
        printf (" %s %.1f ms%s", s_dname[i], rt[i].metrics_ms, i + 1 < D_N ? "," : "\n");
    printf ("the bench's own CPU: %.1f s; notify's messages: %s\n", self_cpu, rt[D_NOTIFY].states);
    const s_phase_t *h = &b->ph[P_HALF];
    if (h->ran) {
        double secs = (double) (h->t1_us - h->t0_us) / 1e6;
        printf ("\nhalf the peak: check-ins peaked at %.0f/s (%d in flight); %zu more sent on schedule at %.0f/s "
                "(%.0f/s achieved): latency from the scheduled send p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f "
                "ms%s\n",
                peak, b->inflight, h->nlat, h->rate, secs > 0 ? (double) h->nlat / secs : 0,
                s_ms_at (h->lat_us, h->nlat, 0.5), s_ms_at (h->lat_us, h->nlat, 0.99), s_ms_at (h->lat_us, h->nlat, 0.999),
                s_ms_at (h->lat_us, h->nlat, 1), half_ok ? "" : " (FAILED)");
    }
    free (all);
}

/* --- main ------------------------------------------------------------------------ */

static void
s_usage (FILE *f)
{
    fprintf (f, "usage: pm-movein-bench [--estates E] [--units U] [--inflight K] [--defect-every N]\n"
                "                       [--half-estates H] [--dir DIR] [--keep]\n"
                "\n"
                "  --estates E       estates moved in (default 100)\n"
                "  --units U         units per estate, a multiple of 100 (default 1000)\n"
                "  --inflight K      requests in flight (default 2048)\n"
                "  --defect-every N  one unit in N has 1-3 defects (default 5; 0: none)\n"
                "  --half-estates H  estates of the half-peak latency run (default E/10, at least 1; 0: no run)\n"
                "  --dir DIR         where the temp PM_HOME goes (default /tmp)\n"
                "  --keep            keep it (data, logs) afterwards\n");
}

static bool
s_int (const char *opt, const char *s, long min, long max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol (s, &end, 10);
    if (!*s || *end || errno || v < min || v > max) {
        fprintf (stderr, "pm-movein-bench: %s '%s': expected a whole number from %ld to %ld\n", opt, s, min, max);
        return false;
    }
    *out = (int) v;
    return true;
}

int
main (int argc, char **argv)
{
    enum { O_ESTATES = 0x100, O_UNITS, O_INFLIGHT, O_DEFECTS, O_HALF, O_DIR, O_KEEP };
    static const struct option opts[] = {
        { "estates", required_argument, NULL, O_ESTATES },
        { "units", required_argument, NULL, O_UNITS },
        { "inflight", required_argument, NULL, O_INFLIGHT },
        { "defect-every", required_argument, NULL, O_DEFECTS },
        { "half-estates", required_argument, NULL, O_HALF },
        { "dir", required_argument, NULL, O_DIR },
        { "keep", no_argument, NULL, O_KEEP },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    s_bench_t b = { .estates = 100, .units = 1000, .inflight = 2048, .defect_every = 5, .half_estates = -1 };
    const char *base = "/tmp";
    bool ok = true;
    int opt;
    while (ok && (opt = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case O_ESTATES: ok = s_int ("--estates", optarg, 1, 999, &b.estates); break;
        case O_UNITS: ok = s_int ("--units", optarg, 100, 20000, &b.units); break;
        case O_INFLIGHT: ok = s_int ("--inflight", optarg, 1, 100000, &b.inflight); break;
        case O_DEFECTS: ok = s_int ("--defect-every", optarg, 0, 1000000, &b.defect_every); break;
        case O_HALF: ok = s_int ("--half-estates", optarg, 0, 999, &b.half_estates); break;
        case O_DIR: base = optarg; break;
        case O_KEEP: b.keep = true; break;
        case 'h': s_usage (stdout); return 0;
        default: ok = false; break;
        }
    }
    if (ok && b.units % S_PER_BUILDING) {
        fprintf (stderr, "pm-movein-bench: --units %d: expected a multiple of %d\n", b.units, S_PER_BUILDING);
        ok = false;
    }
    if (!ok || optind < argc) {
        s_usage (stderr);
        return 2;
    }
    if (b.half_estates < 0)
        b.half_estates = b.estates / 10 > 0 ? b.estates / 10 : 1;
    if (b.estates + b.half_estates > 999) {
        fprintf (stderr, "pm-movein-bench: at most 999 estates in all\n");
        return 2;
    }
    snprintf (b.dir, sizeof b.dir, "%s/pmmovein.XXXXXX", base);
    if (!mkdtemp (b.dir)) {
        fprintf (stderr, "pm-movein-bench: mkdtemp in %s: %s\n", base, strerror (errno));
        return 1;
    }
    signal (SIGINT, s_on_signal);
    signal (SIGTERM, s_on_signal);
    signal (SIGPIPE, SIG_IGN);
    int total = b.estates + b.half_estates;
    b.estate = pm_xcalloc ((size_t) total, sizeof *b.estate);
    for (int e = 0; e < total; e++)
        snprintf (b.estate[e], sizeof b.estate[e], "E%03d", e + 1);
    b.u = pm_xcalloc ((size_t) total * (size_t) b.units, sizeof *b.u);
    int defective = 0;
    for (int e = 0; e < total; e++)
        for (int k = 0; k < b.units; k++) {
            s_unit_init (&b, e, k);
            defective += e < b.estates && b.u[(size_t) e * (size_t) b.units + (size_t) k].defects != 0;
        }
    int code = 1;
    double peak = 0;
    bool half_ok = true;
    b.zctx = zmq_ctx_new ();
    b.fl = pm_inflight_new (S_RETRY_MS);
    pm_request_id (b.id_prefix);
    b.id_prefix[14] = '\0'; /* its time (10) and 4 random characters */

    fprintf (stderr, "pm-movein-bench: %d estates x %d units (%d with defects) in %s\n", b.estates, b.units, defective,
             b.dir);
    int64_t zmq_lost = 0;
    double lmdb_before = s_lmdb_rate (b.dir, "raw-before", S_LMDB_COMMITS);
    double zmq_rate = s_zmq_rate (b.dir, S_ZMQ_MESSAGES, &zmq_lost);
    double lmdb_after = 0;
    fprintf (stderr, "  ceilings: ZeroMQ PUB->SUB %.0f messages/s, LMDB %.0f durable commits/s\n", zmq_rate,
             lmdb_before);
    if (!s_write_config (&b) || !s_start (&b))
        goto done;
    for (int i = 0; i < D_N; i++) {
        Pm__V1__Reply *r = s_ctl (&b, i, "ops.ping", NULL, 20000);
        if (!r) {
            s_die ("%s did not start (see %s/log/%s.log)", s_dname[i], b.dir, s_dname[i]);
            b.keep = true;
            goto done;
        }
        pm__v1__reply__free_unpacked (r, NULL);
    }
    if (!s_clock (&b, S_T_START))
        goto done;
    if (!s_movein (&b)) {
        b.keep = true;
        goto report;
    }
    {
        const s_phase_t *c = &b.ph[P_CHECKIN];
        double secs = (double) (c->t1_us - c->t0_us) / 1e6;
        peak = secs > 0 ? (double) c->nlat / secs : 0;
    }
    if (b.half_estates > 0 && peak > 0) {
        half_ok = s_half (&b, peak / 2);
        if (!half_ok)
            b.keep = true;
    }
    code = half_ok ? 0 : 1;
report:
    s_sample_all (&b);
    {
        uint64_t seq[D_N];
        s_rt_t rt[D_N];
        s_seqs (&b, seq);
        for (int i = 0; i < D_N; i++)
            s_runtime (&b, i, &rt[i]);
        s_print_queues (&b);
        s_stop (&b); /* the raw LMDB rate after, with the daemons stopped */
        lmdb_after = s_lmdb_rate (b.dir, "raw-after", S_LMDB_COMMITS);
        s_report (&b, rt, defective, lmdb_before, lmdb_after, zmq_rate, zmq_lost, peak, half_ok);
    }
done:
    s_stop (&b);
    pm_inflight_destroy (&b.fl);
    for (int i = 0; i < D_N; i++) {
        pm_client_destroy (&b.d[i].work);
        pm_client_destroy (&b.d[i].ctl);
    }
    zmq_ctx_term (b.zctx);
    if (b.keep)
        fprintf (stderr, "pm-movein-bench: kept %s\n", b.dir);
    else
        nftw (b.dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    free (b.u);
    free (b.estate);
    for (int p = 0; p < P_N; p++)
        free (b.ph[p].lat_us);
    return code;
}

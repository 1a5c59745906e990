/* board.js - the operations board: plain JavaScript, no build step.
 *
 * Every figure comes from the daemons through the gateway's own API
 * (POST /v1/{daemon}/{method}) with the token the operator entered (kept in
 * localStorage; a link may carry it in its #token=... fragment, which never
 * reaches a server). The page follows GET /v1/events (read with fetch, so the
 * token travels in a header, not in the URL) and refreshes the figures an
 * event can move; everything is refreshed every few seconds too, for health
 * and lag. A method a daemon does not have (yet) shows "暂无数据" and the
 * rest of the page carries on. Elements with data-fig="..." hold the figures
 * (the browser test compares them with the daemons' own answers). */
(function () {
  "use strict";

  var REFRESH_MS = 5000, EVENT_DEBOUNCE_MS = 400, FEED_MAX = 12;
  var DAEMON_LABELS = { intake: "入住 intake", inspection: "验房 inspection", workorder: "工单 workorder",
                        billing: "收费 billing", notify: "通知 notify", gateway: "网关 gateway" };
  var STATES = [["REGISTERED", "已登记"], ["NOTIFIED", "已通知"], ["SCHEDULED", "已预约"], ["NO_SHOW", "爽约"],
                ["CHECKED_IN", "已办理入住"], ["KEYS_HANDED", "已交钥匙"]];
  var QUEUE_LABELS = {
    import_rejections: "导入被拒行", dead_events: "死信事件", upstreams: "上游同步异常",
    webhooks_paused: "已暂停的推送", webhooks_retrying: "重试中的推送",
    no_shows: "爽约待改约", waitlist: "候补", waiting_check_ins: "待办理入住", blocked_at_key_gate: "钥匙待放行",
    notices_undelivered: "入住通知未送达", uninspected: "未验房", reinspections_due: "待复验",
    overdue_defects: "逾期整改", failed_twice: "两次验房未通过", unassigned: "待派单", about_to_breach: "即将超时工单",
    breached: "超时工单", dunning_calls: "催缴·电话", dunning_visits: "催缴·上门", dunning_letters: "催缴·函件",
    dunning_escalations: "催缴·升级", unmatched_lines: "银行流水未匹配", dead_letters: "发送失败(死信)",
    backlog: "待发送消息", sending: "发送中", awaiting_contacts: "待补联系方式"
  };
  var EVENT_LABELS = {
    "intake.unit.registered": "登记", "intake.unit.updated": "资料更新", "intake.notice.requested": "入住通知",
    "intake.appointment.booked": "预约", "intake.appointment.moved": "改约", "intake.appointment.cancelled": "取消预约",
    "intake.appointment.missed": "爽约", "intake.unit.checked_in": "办理入住", "intake.keys.handed": "交钥匙",
    "inspection.round.opened": "验房开始", "inspection.round.passed": "验房通过", "inspection.round.failed": "验房未通过",
    "inspection.defect.recorded": "记录问题", "inspection.defect.verified": "问题复验通过",
    "inspection.defect.reopened": "问题重开", "inspection.reinspection.due": "待复验",
    "inspection.defect.overdue": "整改逾期", "inspection.accepted_with_defects": "带问题接收",
    "workorder.order.created": "工单创建", "workorder.order.assigned": "派单", "workorder.order.done": "完工",
    "workorder.order.confirmed": "确认", "workorder.order.rejected": "退回", "workorder.sla.warning": "工单预警",
    "workorder.sla.breached": "工单超时", "billing.invoice.issued": "开票", "billing.payment.recorded": "收款",
    "billing.invoice.settled": "结清", "billing.dunning.step": "催缴", "notify.message.sent": "消息已发送",
    "notify.message.failed": "消息发送失败"
  };
  /* KPIs and their targets, each a numerator over a denominator in the
   * daemons' replies, per estate; over all estates the sums of both.
   * 零修及时率 and 零修合格率 are those of the last 30 local days
   * (workorder.kpi, as its gauges), 收缴率 of every period
   * (billing.report.collection), 一次验收合格率 of every first round
   * (inspection.kpi). */
  var KPIS = [
    { id: "ontime", name: "零修及时率", target: 95, method: "workorder.kpi", root: "total", of: ["on_time", "due"] },
    { id: "firstpass", name: "零修合格率", target: 98, method: "workorder.kpi", root: "total", of: ["first_pass", "confirmed"] },
    { id: "collection", name: "收缴率", target: 90, method: "billing.report.collection", root: "estate",
      of: ["collected_fen", "billed_fen"] },
    { id: "inspection", name: "一次验收合格率", target: null, method: "inspection.kpi", root: "estate",
      of: ["first_rounds_passed", "first_rounds_completed"] }
  ];
  var KPI_DAEMON = { "workorder.kpi": "workorder", "billing.report.collection": "billing", "inspection.kpi": "inspection" };
  var KPI_DAYS = 30;

  var token = null, daemons = [], estates = [], refreshing = false, again = false, refreshes = 0, evTimer = null;
  var today = null; /* the estates' date on the daemons' clock (intake.progress), for the KPIs' period */
  var ticking = false;

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) { if (k === "class") e.className = attrs[k]; else e.setAttribute(k, attrs[k]); }
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  var fmtTime = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", hour12: false,
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  function when(ms) { return ms ? fmtTime.format(new Date(Number(ms))) : "—"; }
  function num(v) { return v === undefined || v === null ? 0 : Number(v); }

  /* --- the API ------------------------------------------------------------------------ */

  function call(daemon, method, body) {
    return fetch("/v1/" + daemon + "/" + method, {
      method: "POST", headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      if (r.status === 401) { needToken("令牌无效或已吊销"); throw new Error("401"); }
      return r.json().catch(function () { return {}; }).then(function (j) {
        return { http: r.status, ok: r.status === 200 && j.status === "OK", body: j.body || {}, message: j.message || "" };
      });
    }).catch(function (e) {
      return { http: 0, ok: false, body: {}, message: String(e) };
    });
  }

  function na(node, why) {
    node.textContent = "";
    var p = el("span", { "class": "na" }, "暂无数据");
    if (why) p.title = why;
    node.appendChild(p);
    return p;
  }

  /* --- reading the replies ------------------------------------------------------------------ */

  function stateCount(obj, state) {
    if (!obj) return undefined;
    var lower = state.toLowerCase();
    if (obj[lower] !== undefined) return num(obj[lower]);
    if (obj[state] !== undefined) return num(obj[state]);
    var maps = [obj.states, obj.by_state, obj.units_by_state, obj.counts];
    for (var i = 0; i < maps.length; i++) {
      var m = maps[i];
      if (!m) continue;
      if (Array.isArray(m)) {
        for (var j = 0; j < m.length; j++)
          if (m[j] && String(m[j].state || m[j].name || "").toUpperCase() === state) return num(m[j].count !== undefined ? m[j].count : m[j].units);
      } else if (m[state] !== undefined || m[lower] !== undefined) return num(m[state] !== undefined ? m[state] : m[lower]);
    }
    return undefined;
  }
  function arrayOf(obj, re) {
    for (var k in obj || {}) if (re.test(k) && Array.isArray(obj[k])) return obj[k];
    return null;
  }

  /* --- move-in progress per estate ---------------------------------------------------------- */

  function renderEstate(e, info, progress) {
    var box = el("div", { "class": "estate", "data-estate": e.estate_id });
    var head = el("div", { "class": "head" });
    head.appendChild(el("b", {}, (e.estate_name || e.estate_id)));
    head.appendChild(el("span", { "class": "na" }, e.estate_id + " · " + (e.buildings || []).length + " 栋"));
    box.appendChild(head);
    var figs = el("div", { "class": "figs" });
    function fig(label, value, key) {
      var f = el("div", { "class": "fig" });
      var v = el("span", { "class": "v" }, value);
      if (key) v.setAttribute("data-fig", key);
      f.appendChild(v);
      f.appendChild(el("span", { "class": "k" }, label));
      figs.appendChild(f);
      return v;
    }
    if (info.ok) {
      fig("总户数", num(info.body.units), "units:" + e.estate_id);
      fig("业主", num(info.body.owners), "owners:" + e.estate_id);
    } else {
      na(fig("总户数", "", "units:" + e.estate_id), info.message);
    }
    var p = progress.ok ? progress.body : null;
    if (p && Array.isArray(p.estates)) /* intake.progress answers per estate */
      p = p.estates.filter(function (x) { return x.estate_id === e.estate_id; })[0] || p.estates[0] || null;
    /* (proto3's JSON leaves zeros out: a day without slots is 0 / 0, not a missing figure) */
    var apptNode = fig("今日预约 / 容量", p ? num(p.today_booked) + " / " + num(p.today_capacity) : "",
                       "appointments:" + e.estate_id);
    if (!p) na(apptNode, progress.message);
    if (p && p.today) today = p.today;
    var doneNode = fig("入住完成率", p ? num(p.completion_pct) + "%" : "", "completion:" + e.estate_id);
    if (p) doneNode.title = "已交钥匙 " + num(p.keys_handed) + " / " + num(p.units) + " 户";
    else na(doneNode, progress.message);
    var blockedNode = fig("待放行钥匙", p ? num(p.blocked) : "", "blocked:" + e.estate_id);
    if (p) blockedNode.title = "欠费 " + num(p.blocked_invoice) + " · 验房未通过 " + num(p.blocked_inspection);
    else na(blockedNode, progress.message);
    box.appendChild(figs);

    box.appendChild(el("div", { "class": "sub" }, "各楼栋各状态户数"));
    var progNode = el("div", { "data-fig": "progress:" + e.estate_id });
    if (!p) {
      na(progNode, progress.message);
    } else {
      var rows = arrayOf(p, /building/i) || [];
      var table = el("table");
      var tr = el("tr");
      tr.appendChild(el("th", {}, "楼栋"));
      tr.appendChild(el("th", { "class": "num" }, "户数"));
      STATES.forEach(function (s) { tr.appendChild(el("th", { "class": "num" }, s[1])); });
      table.appendChild(el("thead")).appendChild(tr);
      var tb = el("tbody");
      var lines = rows.length ? rows : [p];
      lines.forEach(function (b) {
        var r = el("tr");
        r.appendChild(el("td", {}, rows.length ? (b.building || b.building_id || b.name || "?") : "合计"));
        r.appendChild(el("td", { "class": "num" }, b.units !== undefined ? num(b.units) : "—"));
        STATES.forEach(function (s) {
          var c = stateCount(b, s[0]);
          r.appendChild(el("td", { "class": "num", "data-fig": "state:" + e.estate_id + ":" + (rows.length ? (b.building || b.name) : "*") + ":" + s[0] },
                           c === undefined ? "—" : c));
        });
        tb.appendChild(r);
      });
      table.appendChild(tb);
      var sc = el("div", { "class": "scroll" });
      sc.appendChild(table);
      progNode.appendChild(sc);
      var hours = arrayOf(p, /hour/i);
      if (hours && hours.length) {
        progNode.appendChild(el("div", { "class": "na" }, "每小时办理入住"));
        var bars = el("div", { "class": "bars", "data-fig": "hourly:" + e.estate_id });
        var vals = hours.map(function (h) {
          if (typeof h !== "object") return num(h);
          for (var k in h) if (k !== "hour" && typeof h[k] === "number") return h[k];
          return 0;
        });
        var max = Math.max.apply(null, vals.concat([1]));
        vals.forEach(function (v, i) {
          var s = el("span");
          s.style.height = (100 * v / max) + "%";
          s.title = (typeof hours[i] === "object" && hours[i].hour ? hours[i].hour : i) + ": " + v;
          bars.appendChild(s);
        });
        progNode.appendChild(bars);
      }
    }
    box.appendChild(progNode);
    return box;
  }

  function refreshProgress() {
    return call("gateway", "gateway.estate.list").then(function (r) {
      var root = $("estates");
      if (!r.ok) { na(root, r.message); return; }
      estates = r.body.estates || [];
      if (!estates.length) { na(root, "还没有导入任何单元"); return; }
      return Promise.all(estates.map(function (e) {
        return Promise.all([call("intake", "intake.estate.get", { estate_id: e.estate_id }),
                            call("intake", "intake.progress", { estate_id: e.estate_id })]);
      })).then(function (all) {
        var wrap = el("div", { "class": "estates" });
        estates.forEach(function (e, i) { wrap.appendChild(renderEstate(e, all[i][0], all[i][1])); });
        root.textContent = "";
        root.appendChild(wrap);
      });
    });
  }

  /* --- queues, daemons, KPIs ------------------------------------------------------------------ */

  function refreshQueues() {
    return Promise.all(daemons.map(function (d) { return call(d, "ops.queues", { limit: 50 }); })).then(function (all) {
      var tb = $("queues").tBodies[0], rows = [];
      daemons.forEach(function (d, i) {
        if (!all[i].ok) rows.push({ d: d, q: null, why: all[i].message });
        else (all[i].body.queues || []).forEach(function (q) { rows.push({ d: d, q: q }); });
      });
      /* the ones with work waiting first; otherwise in daemon order */
      rows.forEach(function (r, i) { r.i = i; });
      rows.sort(function (a, b) {
        var wa = a.q && num(a.q.count) > 0 ? 0 : 1, wb = b.q && num(b.q.count) > 0 ? 0 : 1;
        return wa - wb || a.i - b.i;
      });
      tb.textContent = "";
      rows.forEach(function (row) {
        var d = row.d, q = row.q, tr = el("tr");
        tr.appendChild(el("td", {}, DAEMON_LABELS[d] || d));
        if (!q) {
          var td = el("td", { colspan: 4 });
          na(td, row.why);
          tr.appendChild(td);
          tb.appendChild(tr);
          return;
        }
        var items = q.items || [], oldest = null;
        items.forEach(function (it) { if (it.since_ms && (!oldest || Number(it.since_ms) < Number(oldest.since_ms))) oldest = it; });
        if (!oldest && items.length) oldest = items[0];
        if (num(q.count)) tr.className = "busy";
        var name = el("td", {}, QUEUE_LABELS[q.name] || q.name);
        name.title = q.name + ": " + (q.description || "");
        tr.appendChild(name);
        tr.appendChild(el("td", { "class": "num" + (num(q.count) ? " bad" : ""), "data-fig": "queue:" + d + ":" + q.name }, num(q.count)));
        tr.appendChild(el("td", {}, oldest ? when(oldest.since_ms) : "—"));
        tr.appendChild(el("td", { "class": "wrap" }, oldest ? (oldest.key || "") + (oldest.reason ? " — " + oldest.reason : "") : ""));
        tb.appendChild(tr);
      });
    });
  }

  function refreshDaemons() {
    return Promise.all(daemons.map(function (d) {
      return Promise.all([call(d, "ops.ping"), call(d, "ops.metrics")]);
    })).then(function (all) {
      var tb = $("daemons").tBodies[0];
      tb.textContent = "";
      daemons.forEach(function (d, i) {
        var ping = all[i][0], metrics = all[i][1];
        var tr = el("tr");
        tr.appendChild(el("td", {}, DAEMON_LABELS[d] || d));
        tr.appendChild(el("td", { "class": ping.ok ? "good" : "bad", "data-fig": "health:" + d }, ping.ok ? "正常" : "离线"));
        tr.appendChild(el("td", { "class": "num", "data-fig": "seq:" + d }, ping.ok ? num(ping.body.last_seq) : "—"));
        var lag = null, sources = [];
        if (metrics.ok) {
          lag = 0;
          (metrics.body.metrics || []).forEach(function (m) {
            if (m.name === "pm_consumer_lag") { lag += num(m.value); sources.push((m.labels || "").replace(/source="([^"]*)"/, "$1") + ": " + num(m.value)); }
          });
        }
        var lagCell = el("td", { "class": "num" + (lag ? " bad" : ""), "data-fig": "lag:" + d }, lag === null ? "—" : lag);
        lagCell.title = sources.join(", ") || "不消费其他服务的事件";
        tr.appendChild(lagCell);
        tr.appendChild(el("td", {}, ping.ok ? when(ping.body.started_ms) : "—"));
        tb.appendChild(tr);
      });
    });
  }

  /* YYYY-MM-DD n days after (or before) a YYYY-MM-DD. */
  function addDays(day, n) {
    var t = new Date(day + "T00:00:00Z");
    t.setUTCDate(t.getUTCDate() + n);
    return t.toISOString().slice(0, 10);
  }
  function rate(n, d) { return d ? (100 * n / d).toFixed(1) + "%" : null; }

  function refreshKpis() {
    var root = $("kpis");
    if (!estates.length) { na(root, "还没有导入任何单元"); return Promise.resolve(); }
    var to = today || new Date(Date.now() + 8 * 3600000).toISOString().slice(0, 10), from = addDays(to, 1 - KPI_DAYS);
    var asks = {};
    estates.forEach(function (e) {
      asks[e.estate_id] = {
        "workorder.kpi": call("workorder", "workorder.kpi", { estate_id: e.estate_id, from: from, to: to }),
        "billing.report.collection": call("billing", "billing.report.collection", { estate_id: e.estate_id }),
        "inspection.kpi": call("inspection", "inspection.kpi", { estate_id: e.estate_id })
      };
    });
    var flat = [];
    estates.forEach(function (e) { for (var m in asks[e.estate_id]) flat.push(asks[e.estate_id][m]); });
    return Promise.all(flat).then(function () {
      /* per KPI: per estate [numerator, denominator] or null (the daemon did not answer), and the sums */
      var per = {}, sum = {}, why = {};
      return Promise.all(estates.map(function (e) {
        return Promise.all(KPIS.map(function (k) { return asks[e.estate_id][k.method]; })).then(function (rs) {
          KPIS.forEach(function (k, i) {
            var r = rs[i], body = r.ok ? r.body[k.root] || {} : null;
            per[k.id] = per[k.id] || {};
            if (!body) { why[k.id] = r.message; per[k.id][e.estate_id] = null; return; }
            var n = num(body[k.of[0]]), d = num(body[k.of[1]]);
            per[k.id][e.estate_id] = [n, d];
            sum[k.id] = sum[k.id] || [0, 0];
            sum[k.id][0] += n;
            sum[k.id][1] += d;
          });
        });
      })).then(function () {
        root.textContent = "";
        var boxes = el("div", { "class": "kpis" });
        KPIS.forEach(function (k) {
          var box = el("div", { "class": "kpi" });
          box.appendChild(el("div", { "class": "name" }, k.name));
          var v = el("div", { "class": "v", "data-fig": "kpi:" + k.id });
          var s = sum[k.id], pct = s ? rate(s[0], s[1]) : null;
          if (!pct) na(v, s ? "还没有可计算的数据" : why[k.id]);
          else {
            v.textContent = pct;
            v.title = s[0] + " / " + s[1];
            if (k.target !== null) box.className += 100 * s[0] / s[1] >= k.target ? " ok" : " low";
          }
          box.appendChild(v);
          box.appendChild(el("div", { "class": "t" }, k.target !== null ? "目标 ≥ " + k.target + "%" : "目标 —"));
          boxes.appendChild(box);
        });
        root.appendChild(boxes);
        /* per estate */
        var table = el("table"), tr = el("tr");
        tr.appendChild(el("th", {}, "小区"));
        KPIS.forEach(function (k) { tr.appendChild(el("th", { "class": "num" }, k.name)); });
        table.appendChild(el("thead")).appendChild(tr);
        var tb = el("tbody");
        estates.forEach(function (e) {
          var row = el("tr");
          row.appendChild(el("td", {}, e.estate_name || e.estate_id));
          KPIS.forEach(function (k) {
            var c = per[k.id][e.estate_id], pct = c ? rate(c[0], c[1]) : null;
            var td = el("td", { "class": "num", "data-fig": "kpi:" + k.id + ":" + e.estate_id }, pct || "—");
            if (c) td.title = c[0] + " / " + c[1];
            if (pct && k.target !== null && 100 * c[0] / c[1] < k.target) td.className += " bad";
            row.appendChild(td);
          });
          tb.appendChild(row);
        });
        table.appendChild(tb);
        var sc = el("div", { "class": "scroll" });
        sc.appendChild(table);
        root.appendChild(sc);
        root.appendChild(el("div", { "class": "na", "data-fig": "kpi:period" },
                            "零修及时率与合格率: " + from + " 至 " + to + "（近" + KPI_DAYS + "天）；收缴率: 全部账期"));
      });
    });
  }

  /* --- refreshing and the event stream ------------------------------------------------------- */

  function refresh(what) {
    if (refreshing) { again = true; return Promise.resolve(); }
    refreshing = true;
    var first = refreshProgress().catch(function () {}).then(refreshKpis); /* the KPIs need the estates and their date */
    var parts = what === "events" ? [first, refreshQueues()] : [first, refreshQueues(), refreshDaemons()];
    return Promise.all(parts).catch(function () {}).then(function () {
      refreshing = false;
      refreshes++;
      document.body.setAttribute("data-refreshes", String(refreshes));
      $("updated").textContent = when(Date.now());
      if (again) { again = false; return refresh("events"); }
    });
  }

  function onEvent(ev) {
    var feed = $("feed");
    var li = el("li");
    li.appendChild(el("time", {}, when(ev.at_ms)));
    li.appendChild(el("span", {}, EVENT_LABELS[ev.type] || ev.type));
    li.appendChild(el("span", { "class": "na" }, ev.unit_id || ev.estate_id || ev.id));
    feed.insertBefore(li, feed.firstChild);
    while (feed.children.length > FEED_MAX) feed.removeChild(feed.lastChild);
    if (evTimer) return;
    evTimer = setTimeout(function () { evTimer = null; refresh("events"); }, EVENT_DEBOUNCE_MS);
  }

  function setLive(on) {
    $("live").className = "dot " + (on ? "on" : "off");
    $("live-text").textContent = on ? "实时" : "重新连接中…";
  }

  function stream() {
    var last = null;
    function once() {
      var headers = { "Authorization": "Bearer " + token };
      if (last) headers["Last-Event-ID"] = last;
      return fetch("/v1/events", { headers: headers }).then(function (r) {
        if (r.status === 401) { needToken("令牌无效或已吊销"); return "stop"; }
        if (r.status === 410) { last = null; return; }
        if (!r.ok || !r.body) return;
        setLive(true);
        var reader = r.body.getReader(), dec = new TextDecoder(), buf = "";
        function pump() {
          return reader.read().then(function (x) {
            if (x.done) return;
            buf += dec.decode(x.value, { stream: true });
            var i;
            while ((i = buf.indexOf("\n\n")) >= 0) {
              var block = buf.slice(0, i), id = null, data = null;
              buf = buf.slice(i + 2);
              block.split("\n").forEach(function (line) {
                if (line.indexOf("id: ") === 0) id = line.slice(4);
                else if (line.indexOf("data: ") === 0) data = line.slice(6);
              });
              if (id) last = id;
              if (data) { try { onEvent(JSON.parse(data)); } catch (e) { /* not JSON: skip */ } }
            }
            return pump();
          });
        }
        return pump();
      }).catch(function () {}).then(function (how) {
        setLive(false);
        if (how === "stop" || !token) return;
        return sleep(2000).then(once);
      });
    }
    return once();
  }

  /* --- the token ------------------------------------------------------------------------------ */

  function needToken(why) {
    token = null;
    try { localStorage.removeItem("pm.token"); } catch (e) { /* private mode */ }
    $("board").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = why || "";
  }

  function start() {
    $("login").hidden = true;
    $("board").hidden = false;
    call("gateway", "gateway.status").then(function (r) {
      daemons = r.ok && r.body.daemons ? r.body.daemons : ["intake", "inspection", "workorder", "billing", "notify", "gateway"];
      return refresh("all");
    }).then(function () {
      stream();
      if (!ticking) setInterval(function () { if (token) refresh("all"); }, REFRESH_MS);
      ticking = true;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    if (m) {
      token = decodeURIComponent(m[1]);
      try { localStorage.setItem("pm.token", token); } catch (e) { /* private mode */ }
      history.replaceState(null, "", location.pathname + location.search);
    } else {
      try { token = localStorage.getItem("pm.token"); } catch (e) { token = null; }
    }
    $("login").addEventListener("submit", function (ev) {
      ev.preventDefault();
      token = $("token").value.trim();
      try { localStorage.setItem("pm.token", token); } catch (e) { /* private mode */ }
      start();
    });
    $("logout").addEventListener("click", function (ev) { ev.preventDefault(); needToken(""); });
    if (token) start(); else needToken("");
  });
})();

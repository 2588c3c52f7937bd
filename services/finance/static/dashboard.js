// Wuguan finance dashboard: reads /api/dashboard with a bearer token and draws plain SVG bars.
// No libraries, no CDN. The token comes from the URL fragment (#token=..., never sent to the
// server in the URL) or from the form, and is kept in sessionStorage for the tab only.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  // Fragment parameters: token (taken out of the address bar at once), refresh (seconds),
  // drill (arrears | disputed | credited | lateFees | bucket:0-30 ...), account, decision:
  // a link can open the dashboard on a drill-down.
  var fragment = {};
  location.hash.replace(/^#/, "").split("&").forEach(function (part) {
    var kv = part.split("=");
    if (kv[0]) fragment[kv[0]] = decodeURIComponent(kv.slice(1).join("="));
  });

  function tokenFromFragment() {
    if (!fragment.token) return null;
    sessionStorage.setItem("wuguanToken", fragment.token);
    history.replaceState(null, "", location.pathname);  // keep it out of the address bar
    return fragment.token;
  }

  // Integer fen to "¥1,234.56" by integer arithmetic (no floats), as `wuguan run`'s summary.
  function yuan(fen) {
    if (fen === null || fen === undefined) return "–";
    var sign = fen < 0 ? "-" : "", abs = Math.abs(fen);
    var whole = String(Math.floor(abs / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var cents = String(abs % 100);
    return sign + "¥" + whole + "." + (cents.length < 2 ? "0" + cents : cents);
  }

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // rows: [{label, value, metric, cls}] -> horizontal bars, each value also written as text
  // carrying data-metric, so the numbers on screen are the API's numbers (the test reads them).
  function bars(containerId, rows) {
    var container = document.getElementById(containerId);
    container.textContent = "";
    var max = rows.reduce(function (m, r) { return Math.max(m, r.value); }, 0) || 1;
    var rowH = 24, labelW = 170, barW = 300, width = labelW + barW + 60;
    var svg = el("svg", {width: width, height: rows.length * rowH + 4, role: "img"});
    rows.forEach(function (r, i) {
      var y = i * rowH + 2;
      svg.appendChild(el("text", {x: 0, y: y + 16}, r.label));
      var w = Math.round(barW * r.value / max);
      svg.appendChild(el("rect", {x: labelW, y: y + 3, width: Math.max(w, 1), height: rowH - 8,
                                  "class": "bar " + (r.cls || "")}));
      var attrs = {x: labelW + Math.max(w, 1) + 6, y: y + 16, "class": "value", "data-metric": r.metric};
      if (r.drill) attrs["data-drill"] = r.drill;
      var value = el("text", attrs, r.text !== undefined ? r.text : String(r.value));
      svg.appendChild(value);
    });
    container.appendChild(svg);
  }

  function render(data) {
    document.querySelector('[data-metric="asOf"]').textContent = data.asOf || "nothing projected yet";
    renderMoney(data);
    renderTrends(data.trends || []);
    bars("dispute-aging", data.disputeAging.map(function (b) {
      return {label: b.bucket + " d", value: b.count, metric: "disputeAging." + b.bucket};
    }));
    bars("arrears-aging", data.arrearsAging.map(function (b) {
      return {label: b.bucket + " d", value: b.count, metric: "arrearsAging." + b.bucket};
    }));
    var f = data.funnel;
    bars("funnel", [
      ["occurrences", "occurrences opened"], ["reminded", "reminded"], ["delivered", "reminder delivered"],
      ["suspensionRequested", "suspension requested"], ["suspended", "suspended"], ["restored", "restoration ordered"]
    ].map(function (s) { return {label: s[1], value: f[s[0]], metric: "funnel." + s[0]}; }));
    var channels = [];
    f.byChannel.forEach(function (c) {
      channels.push({label: c.channel + " scheduled", value: c.scheduled || 0, metric: "scheduled." + c.channel});
      channels.push({label: c.channel + " due", value: c.reminders, metric: "channel." + c.channel, cls: "second"});
    });
    bars("channels", channels);
    bars("sla", [
      {label: "dispute reply > 15 d", value: data.slaBreaches.disputeReplyOverdue,
       metric: "sla.disputeReplyOverdue", cls: "alert"},
      {label: "restoration > 48 h", value: data.slaBreaches.restorationSlaMissed,
       metric: "sla.restorationSlaMissed", cls: "alert"}
    ]);
    var cards = [];
    data.cardsByOutlet.forEach(function (o) {
      cards.push({label: o.outletId + " replaced", value: o.replaced, metric: "cards." + o.outletId + ".replaced"});
      cards.push({label: o.outletId + " no stock", value: o.escalated, metric: "cards." + o.outletId + ".escalated",
                  cls: "alert"});
      cards.push({label: o.outletId + " referred", value: o.referred, metric: "cards." + o.outletId + ".referred",
                  cls: "second"});
    });
    bars("cards", cards);
    if (document.getElementById("drill").hidden) document.getElementById("board").hidden = false;
  }

  // Money first: what finance asks before any count. Each figure opens its accounts.
  var FIGURES = [
    ["arrearsMinor", "In arrears (open)", "arrearsAccounts", "occurrences", "arrears"],
    ["disputedMinor", "Disputed (on hold)", "openDisputes", "open disputes", "disputed"],
    ["creditedMinor", "Credited", "creditNotes", "credit notes", "credited"],
    ["lateFeesMinor", "Late fees charged", null, "", "lateFees"]
  ];

  function renderMoney(data) {
    var money = data.money || {}, box = document.getElementById("money");
    box.textContent = "";
    FIGURES.forEach(function (f) {
      var button = document.createElement("button");
      button.className = "figure";
      button.setAttribute("data-drill", f[4]);
      var name = document.createElement("span"); name.className = "name"; name.textContent = f[1];
      var amount = document.createElement("span"); amount.className = "amount";
      amount.setAttribute("data-metric", "money." + f[0]);
      amount.setAttribute("data-fen", String(money[f[0]]));
      amount.textContent = yuan(money[f[0]]);
      button.appendChild(name); button.appendChild(amount);
      if (f[2]) {
        var of = document.createElement("span"); of.className = "of";
        of.textContent = money[f[2]] + " " + f[3];
        button.appendChild(of);
      }
      button.onclick = function () { window.wuguanDrill.open(f[4]); };
      box.appendChild(button);
    });
    bars("outstanding", data.arrearsAging.map(function (b) {
      return {label: b.bucket + " d (" + b.count + ")", value: b.amountMinor, text: yuan(b.amountMinor),
              metric: "outstanding." + b.bucket, drill: "bucket:" + b.bucket};
    }));
    Array.prototype.forEach.call(document.querySelectorAll("#outstanding [data-drill]"), function (node) {
      node.style.cursor = "pointer";
      node.addEventListener("click", function () { window.wuguanDrill.open(node.getAttribute("data-drill")); });
    });
  }

  var TREND_COLUMNS = [["decisions", "decisions"], ["arrearsOpened", "arrears opened"],
                       ["arrearsClosed", "arrears closed"], ["disputesOpened", "disputes opened"],
                       ["disputesAnswered", "disputes answered"]];

  function renderTrends(days) {
    var box = document.getElementById("trends");
    box.textContent = "";
    var table = document.createElement("table");
    table.className = "rows";
    var head = table.insertRow();
    ["day"].concat(TREND_COLUMNS.map(function (c) { return c[1]; })).forEach(function (name) {
      var th = document.createElement("th"); th.textContent = name; head.appendChild(th);
    });
    days.forEach(function (d) {
      var row = table.insertRow();
      row.insertCell().textContent = d.day;
      TREND_COLUMNS.forEach(function (c) {
        var cell = row.insertCell();
        cell.className = "num";
        cell.setAttribute("data-metric", "trend." + d.day + "." + c[0]);
        cell.textContent = String(d[c[0]]);
      });
    });
    box.appendChild(table);
  }

  var loads = 0;

  function loaded() {
    loads += 1;
    var counter = document.getElementById("loads");
    counter.textContent = String(loads);
    counter.setAttribute("data-loads", String(loads));
    document.getElementById("refreshed-at").textContent = new Date().toLocaleTimeString();
    document.getElementById("refreshed").hidden = false;
  }

  function load(token) {
    var status = document.getElementById("status");
    if (!loads) status.textContent = "loading…";
    fetch("/api/dashboard", {headers: {"Authorization": "Bearer " + token}})
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          sessionStorage.removeItem("wuguanToken");
          throw new Error("token refused (" + response.status + "): mint a new one");
        }
        if (!response.ok) throw new Error("API error " + response.status);
        return response.json();
      })
      .then(function (data) { status.textContent = ""; render(data); loaded(); })
      .catch(function (err) { status.textContent = err.message; showLogin(); });
  }

  function showLogin() {
    var form = document.getElementById("login");
    form.hidden = false;
    form.onsubmit = function (event) {
      event.preventDefault();
      var token = document.getElementById("token").value.trim();
      if (!token) return;
      sessionStorage.setItem("wuguanToken", token);
      form.hidden = true;
      load(token);
    };
  }

  var token = tokenFromFragment() || sessionStorage.getItem("wuguanToken");
  window.wuguanBoard = {yuan: yuan, token: function () { return sessionStorage.getItem("wuguanToken"); },
                        fragment: fragment};
  if (token) {
    load(token);
    // It refreshes itself: finance keeps it open (30 s, or #refresh=N seconds, at least 2).
    var every = Math.max(2, parseInt(fragment.refresh, 10) || 30);
    document.getElementById("refresh-seconds").textContent = String(every);
    setInterval(function () {
      var current = sessionStorage.getItem("wuguanToken");
      if (current) load(current);
    }, every * 1000);
  } else {
    showLogin();
  }
})();

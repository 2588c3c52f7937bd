// Wuguan finance dashboard: reads /api/dashboard with a bearer token and draws plain SVG bars.
// No libraries, no CDN. The token comes from the URL fragment (#token=..., never sent to the
// server in the URL) or from the form, and is kept in sessionStorage for the tab only.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  function tokenFromFragment() {
    var match = /(?:^|&)token=([^&]+)/.exec(location.hash.replace(/^#/, ""));
    if (!match) return null;
    var token = decodeURIComponent(match[1]);
    sessionStorage.setItem("wuguanToken", token);
    history.replaceState(null, "", location.pathname);  // keep it out of the address bar
    return token;
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
      var value = el("text", {x: labelW + Math.max(w, 1) + 6, y: y + 16, "class": "value",
                              "data-metric": r.metric}, String(r.value));
      svg.appendChild(value);
    });
    container.appendChild(svg);
  }

  function render(data) {
    document.querySelector('[data-metric="asOf"]').textContent = data.asOf || "nothing projected yet";
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
    bars("channels", f.byChannel.map(function (c) {
      return {label: c.channel, value: c.reminders, metric: "channel." + c.channel, cls: "second"};
    }));
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
    document.getElementById("board").hidden = false;
  }

  function load(token) {
    var status = document.getElementById("status");
    status.textContent = "loading…";
    fetch("/api/dashboard", {headers: {"Authorization": "Bearer " + token}})
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          sessionStorage.removeItem("wuguanToken");
          throw new Error("token refused (" + response.status + "): mint a new one");
        }
        if (!response.ok) throw new Error("API error " + response.status);
        return response.json();
      })
      .then(function (data) { status.textContent = ""; render(data); })
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
  if (token) load(token); else showLogin();
})();

// The self-check page: GET /api/self-check?period=YYYY-MM with the dashboard's bearer token
// (same tab storage), one table row per standard with 达标 / 不达标 and the breach decision ids.
(function () {
  "use strict";

  function tokenFromFragment() {
    var match = /(?:^|&)token=([^&]+)/.exec(location.hash.replace(/^#/, ""));
    if (!match) return null;
    var token = decodeURIComponent(match[1]);
    sessionStorage.setItem("wuguanToken", token);
    history.replaceState(null, "", location.pathname + location.search);
    return token;
  }

  function cell(row, text, attrs) {
    var td = document.createElement("td");
    td.textContent = text;
    Object.keys(attrs || {}).forEach(function (k) { td.setAttribute(k, attrs[k]); });
    row.appendChild(td);
  }

  function measured(m) {
    return Object.keys(m).filter(function (k) { return !/DecisionIds$/.test(k); }).map(function (k) {
      var v = m[k];
      if (Array.isArray(v)) v = v.map(function (x) { return typeof x === "object" ? x.tariffId + " v" + x.version + " " + x.approvalRef : x; }).join(", ");
      return k + " " + (v === null ? "–" : v);
    }).join("; ");
  }

  function render(report) {
    ["period", "policyVersion", "status"].forEach(function (f) {
      document.querySelector('[data-field="' + f + '"]').textContent = report[f];
    });
    var body = document.querySelector("#rows tbody");
    body.textContent = "";
    report.rows.forEach(function (r) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-row", r.key);
      cell(tr, r.standard);
      cell(tr, r.ruleId);
      cell(tr, r.limit);
      cell(tr, measured(r.measured));
      // met null: nothing measured (the row's note says why), neither met nor breached.
      cell(tr, r.status, {"data-status": r.key, "class": r.met === null ? "unmeasured" : (r.met ? "met" : "breach"),
                          "title": r.note || ""});
      cell(tr, r.department);
      cell(tr, r.breaches.map(function (b) { return b.decisionIds.join(" "); }).join(" | "),
           {"data-breaches": r.key});
      body.appendChild(tr);
    });
    document.getElementById("report").hidden = false;
  }

  function load(token, period) {
    var status = document.getElementById("status");
    status.textContent = "loading…";
    fetch("/api/self-check?period=" + encodeURIComponent(period), {headers: {"Authorization": "Bearer " + token}})
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          sessionStorage.removeItem("wuguanToken");
          throw new Error("token refused (" + response.status + "): mint a new one");
        }
        if (!response.ok) throw new Error("API error " + response.status);
        return response.json();
      })
      .then(function (report) { status.textContent = ""; render(report); })
      .catch(function (err) { status.textContent = err.message; showLogin(period); });
  }

  function showLogin(period) {
    var form = document.getElementById("login");
    form.hidden = false;
    form.onsubmit = function (event) {
      event.preventDefault();
      var token = document.getElementById("token").value.trim();
      if (!token) return;
      sessionStorage.setItem("wuguanToken", token);
      form.hidden = true;
      load(token, period);
    };
  }

  var query = /(?:^|[?&])period=(\d{4}-\d{2})/.exec(location.search);
  var now = new Date();
  var period = query ? query[1] : now.getFullYear() + "-" + ("0" + (now.getMonth() + 1)).slice(-2);
  document.getElementById("period").value = period;
  document.getElementById("choose").onsubmit = function (event) {
    event.preventDefault();
    location.search = "?period=" + document.getElementById("period").value;
  };
  var token = tokenFromFragment() || sessionStorage.getItem("wuguanToken");
  if (token) load(token, period); else showLogin(period);
})();

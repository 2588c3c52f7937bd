// Drill-down from a money figure to its accounts, from an account to its decisions, and from a
// charge (or any decision) to its story: what caused it and what it caused. Reads the API's
// lists (finance role) and audit trails (auditor role; `wuguan run`'s token is one).
(function () {
  "use strict";
  var board = window.wuguanBoard;

  // figure -> [title, list endpoint with filters, columns: [key, heading, money?]]
  var LISTS = {
    arrears: ["Accounts in arrears (open)", "/api/arrears?status=open&limit=500",
              [["accountId", "account"], ["billId", "bill"], ["overdueMinor", "overdue", true],
               ["heldMinor", "held (disputed)", true], ["ageDays", "days"], ["offenceCount", "offence"],
               ["remindersDue", "reminders"]]],
    disputed: ["Open disputes (amounts on hold)", "/api/disputes?status=acknowledged&limit=500",
               [["accountId", "account"], ["ticketId", "ticket"], ["billId", "bill"], ["heldMinor", "held", true],
                ["openedAt", "opened"], ["replyDueAt", "reply due"], ["repliedAt", "replied"]]],
    credited: ["Credit notes", "/api/credit-notes?limit=500",
               [["accountId", "account"], ["creditNoteId", "credit note"], ["ticketId", "ticket"],
                ["amountMinor", "amount", true], ["how", "how"], ["issuedAt", "issued"]]],
    lateFees: ["Late fees charged", "/api/late-fees?limit=500",
               [["accountId", "account"], ["billId", "bill"], ["feeMinor", "fee", true],
                ["totalFeeMinor", "total", true], ["daysOverdue", "days"], ["chargedAt", "charged"]]]
  };

  function get(path) {
    return fetch(path, {headers: {"Authorization": "Bearer " + board.token()}}).then(function (response) {
      if (response.status === 403) throw new Error("this needs an auditor token: wuguan api-token --role auditor");
      if (!response.ok) throw new Error("API error " + response.status);
      return response.json();
    });
  }

  function show(title) {
    document.getElementById("drill").hidden = false;
    document.getElementById("board").hidden = true;
    document.getElementById("drill-title").textContent = title;
    var body = document.getElementById("drill-body");
    body.textContent = "loading…";
    return body;
  }

  function cell(row, text, cls, metric) {
    var td = row.insertCell();
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) td.className = cls;
    if (metric) td.setAttribute("data-drill-cell", metric);
    return td;
  }

  function table(body, headings, rows) {
    body.textContent = "";
    var t = document.createElement("table");
    t.className = "rows";
    var head = t.insertRow();
    headings.forEach(function (h) { var th = document.createElement("th"); th.textContent = h; head.appendChild(th); });
    rows.forEach(function (fill) { fill(t.insertRow()); });
    body.appendChild(t);
    return t;
  }

  function accountLink(td, account) {
    td.textContent = "";
    var a = document.createElement("a");
    a.href = "#";
    a.textContent = account;
    a.onclick = function (event) { event.preventDefault(); openAccount(account); };
    td.appendChild(a);
  }

  function openList(name) {
    var bucket = name.indexOf("bucket:") === 0 ? name.slice(7) : null;
    var spec = bucket ? ["Accounts in arrears, " + bucket + " days past due",
                         "/api/arrears?status=open&limit=500&bucket=" + encodeURIComponent(bucket), LISTS.arrears[2]]
                      : LISTS[name];
    var body = show(spec[0]);
    get(spec[1]).then(function (data) {
      var t = table(body, spec[2].map(function (c) { return c[1]; }), data.items.map(function (item) {
        return function (row) {
          row.setAttribute("data-drill-row", item.accountId);
          spec[2].forEach(function (c) {
            var td = cell(row, c[2] ? board.yuan(item[c[0]]) : item[c[0]], c[2] ? "num" : "", c[0]);
            if (c[0] === "accountId") accountLink(td, item.accountId);
          });
        };
      }));
      t.setAttribute("data-drill-list", name);
    }).catch(function (err) { body.textContent = err.message; });
  }

  function openAccount(account) {
    var body = show("Account " + account + ": its decisions");
    get("/api/audit/accounts/" + encodeURIComponent(account) + "?limit=500").then(function (data) {
      var t = table(body, ["time", "decision", "outcome", "rules", "amount", "story"], data.decisions.map(function (d) {
        var decision = d.decision, p = decision.payload || {};
        return function (row) {
          row.setAttribute("data-decision-id", decision.decisionId);
          cell(row, d.businessTime);
          cell(row, decision.decisionType);
          cell(row, decision.outcome);
          cell(row, (decision.ruleIds || []).join(", "));
          cell(row, p.amountMinor !== undefined ? board.yuan(p.amountMinor) : "", "num");
          var a = document.createElement("a");
          a.href = "#";
          a.textContent = decision.decisionType === "guard.CdrRated" ? "charge story" : "trail";
          a.onclick = function (event) { event.preventDefault(); openDecision(decision.decisionId); };
          row.insertCell().appendChild(a);
        };
      }));
      t.setAttribute("data-account", account);
    }).catch(function (err) { body.textContent = err.message; });
  }

  function describe(d) {
    var decision = d.decision, p = decision.payload || {};
    var parts = [d.businessTime, decision.decisionType, decision.outcome, (decision.ruleIds || []).join(",")];
    if (p.amountMinor !== undefined) parts.push(board.yuan(p.amountMinor));
    if (p.tariffId) parts.push("tariff " + p.tariffId + " v" + p.tariffVersion);
    if ((decision.reasonCodes || []).length) parts.push("(" + decision.reasonCodes.join(", ") + ")");
    return parts.join("  ");
  }

  function openDecision(id) {
    var body = show("The story of decision " + id);
    get("/api/audit/decisions/" + encodeURIComponent(id)).then(function (trail) {
      body.textContent = "";
      [["the decision", [trail.decision]], ["caused by", trail.causedBy], ["led to", trail.caused]].forEach(function (part) {
        var h = document.createElement("h3");
        h.textContent = part[0];
        body.appendChild(h);
        var list = document.createElement("ul");
        part[1].forEach(function (d) {
          var li = document.createElement("li");
          li.setAttribute("data-story", part[0]);
          li.textContent = describe(d);
          list.appendChild(li);
        });
        if (!part[1].length) { var none = document.createElement("li"); none.textContent = "none"; list.appendChild(none); }
        body.appendChild(list);
      });
    }).catch(function (err) { body.textContent = err.message; });
  }

  function open(name) {
    if (name.indexOf("account:") === 0) return openAccount(name.slice(8));
    return openList(name);
  }

  document.getElementById("drill-close").onclick = function (event) {
    event.preventDefault();
    document.getElementById("drill").hidden = true;
    document.getElementById("board").hidden = false;
  };

  window.wuguanDrill = {open: open, openAccount: openAccount, openDecision: openDecision};
  var f = board.fragment;
  if (board.token()) {
    if (f.decision) openDecision(f.decision);
    else if (f.account) openAccount(f.account);
    else if (f.drill) open(f.drill);
  }
})();

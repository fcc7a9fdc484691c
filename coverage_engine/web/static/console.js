// The console's only script: keeps the board live over server-sent events and
// shows the screen pop when this desk's phone takes a call. Data is written
// with textContent only: caller names are hostile text.
"use strict";

(function () {
  const rows = document.getElementById("board-rows");
  if (!rows) return;
  const popArea = document.getElementById("pop-area");
  const live = document.getElementById("live");
  let offsetMs = 0; // server clock minus this browser's clock
  let calls = [];

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 3600) return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
    return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  }

  function waited(call) {
    if (call.answered_at) return call.waiting_seconds;
    return (Date.now() + offsetMs - Date.parse(call.started_at)) / 1000;
  }

  function renderCalls() {
    rows.replaceChildren();
    if (!calls.length) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = cell("No calls right now.");
      td.colSpan = 5;
      tr.appendChild(td);
      rows.appendChild(tr);
    }
    for (const c of calls) {
      const tr = document.createElement("tr");
      tr.dataset.call = c.call_id;
      tr.className = "phase-" + c.phase.replace(/\s+/g, "-");
      tr.append(cell(c.short_name || c.practice || "?"), cell((c.caller + " " + c.caller_name).trim()),
        cell(c.label), cell(c.started_local), cell(duration(waited(c))));
      rows.appendChild(tr);
    }
    document.getElementById("call-count").textContent = String(calls.length);
  }

  function renderOperators(ops) {
    const list = document.getElementById("operators");
    list.replaceChildren();
    if (!ops.known) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "Presence unknown (the engine is not following the operator queue over AMI).";
      list.appendChild(li);
    }
    for (const m of ops.members) {
      const li = document.createElement("li");
      const strong = document.createElement("strong");
      strong.textContent = m.phone;
      li.append(strong, " " + m.state + (m.signed_in ? " · " + m.signed_in : ""));
      li.className = "op-" + m.state.split(" ")[0];
      list.appendChild(li);
    }
  }

  function renderPractices(practices) {
    const box = document.getElementById("practices");
    box.replaceChildren();
    for (const p of practices) {
      const art = document.createElement("article");
      art.className = "practice";
      art.dataset.practice = p.id;
      const h = document.createElement("h3");
      const st = document.createElement("span");
      st.className = "status " + p.status;
      st.textContent = p.status;
      const t = document.createElement("span");
      t.className = "muted";
      t.textContent = p.local_time;
      h.append(p.name + " ", st, " ", t);
      const reason = document.createElement("p");
      reason.className = "reason";
      reason.textContent = p.reason;
      const oncall = document.createElement("p");
      oncall.textContent = "On call: " + (p.primary ? p.primary.name + " (" + p.primary.reach + ")" : "nobody") +
        (p.backup ? "; backup " + p.backup.name : "");
      art.append(h, reason, oncall);
      for (const [label, change] of [["Next handoff", p.next_handoff], ["Next change", p.next_status]]) {
        if (!change) continue;
        const c = document.createElement("p");
        c.className = "muted";
        c.textContent = label + " " + change.at + ": " + change.what;
        art.appendChild(c);
      }
      box.appendChild(art);
    }
  }

  // Alerts (an urgent message nobody acknowledged, a doctor who did not confirm being on
  // call) stay above the board until dealt with.
  function renderAlerts(alerts) {
    const box = document.getElementById("alerts");
    const list = document.getElementById("alert-list");
    if (!box || !list) return;
    list.replaceChildren();
    for (const a of alerts) {
      const li = document.createElement("li");
      li.className = "alert alert-" + a.kind;
      li.dataset.alert = a.id;
      const head = document.createElement("strong");
      head.className = "headline";
      head.textContent = a.headline;
      const advice = document.createElement("span");
      advice.className = "advice";
      advice.textContent = a.advice;
      const open = document.createElement("a");
      open.href = a.link;
      open.textContent = a.link_text;
      li.append(head, " ", advice, " ", open);
      if (a.resolvable) {
        const form = document.createElement("form");
        form.method = "post";
        form.action = "/handoffs/" + encodeURIComponent(a.id) + "/resolve";
        form.className = "inline resolve";
        const csrf = document.createElement("input");
        csrf.type = "hidden";
        csrf.name = "csrf";
        csrf.value = document.body.dataset.csrf || "";
        const button = document.createElement("button");
        button.type = "submit";
        button.textContent = "Doctor reached";
        form.append(csrf, button);
        li.append(" ", form);
      }
      list.appendChild(li);
    }
    document.getElementById("alert-count").textContent = String(alerts.length);
    box.hidden = alerts.length === 0;
  }

  function dirty() {
    const form = popArea.querySelector("form");
    if (!form) return false;
    return Array.from(form.elements).some(
      (el) => (el.tagName === "TEXTAREA" || el.type === "text" || el.type === "date") && el.value !== el.defaultValue
    );
  }

  async function pop(callId) {
    if (dirty()) {
      const note = document.createElement("p");
      note.className = "notice";
      const a = document.createElement("a");
      a.href = "/calls/" + encodeURIComponent(callId);
      a.target = "_blank";
      a.textContent = "New call on your phone: open it";
      note.appendChild(a);
      popArea.prepend(note);
      return;
    }
    const response = await fetch("/calls/" + encodeURIComponent(callId) + "/pop", { credentials: "same-origin" });
    if (!response.ok) return;
    // Server-rendered, autoescaped HTML of our own origin.
    popArea.innerHTML = await response.text();
    const first = popArea.querySelector("#f-patient_name, #f-caller_name");
    if (first) first.focus();
  }

  function connect() {
    const source = new EventSource("/api/stream");
    source.addEventListener("open", () => { live.textContent = "live"; live.className = "live on"; });
    source.addEventListener("error", () => { live.textContent = "reconnecting…"; live.className = "live off"; });
    source.addEventListener("board", (e) => {
      const board = JSON.parse(e.data);
      offsetMs = Date.parse(board.now) - Date.now();
      calls = board.calls;
      renderAlerts(board.alerts || []);
      renderCalls();
      renderOperators(board.operators);
      renderPractices(board.practices);
    });
    source.addEventListener("pop", (e) => { pop(JSON.parse(e.data).call_id); });
    source.addEventListener("signed_out", () => { source.close(); window.location.href = "/login"; });
  }

  setInterval(renderCalls, 1000);
  connect();
})();

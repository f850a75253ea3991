// The status page: polls /status.json every `refresh` seconds (the webhook's status_refresh)
// and lays it out. Every host name, commit and message is data: written with textContent,
// never as markup. The one exception is Mermaid's SVG, which Mermaid itself builds from the
// diagram's text and sanitizes (securityLevel "strict").
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let refresh = 10;
  let drawnText = null;
  let drawings = 0;

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  // a state shown in the colour of a health level (ok, warning, error)
  function badge(text, level) {
    return el("span", text, "health health-" + (["ok", "warning", "error"].includes(level)
                                                 ? level : "unknown"));
  }
  const health = (value) => badge(value, value);

  // rows: arrays of cells (text or a node); a row may carry data attributes in row.data
  function fill(id, headers, rows, empty) {
    const table = $(id);
    table.replaceChildren();
    if (!rows.length) {
      const tr = table.appendChild(el("tr"));
      tr.appendChild(el("td", empty, "note"));
      return;
    }
    const head = table.appendChild(el("thead")).appendChild(el("tr"));
    headers.forEach((h) => head.appendChild(el("th", h)));
    const body = table.appendChild(el("tbody"));
    rows.forEach((row) => {
      const tr = body.appendChild(el("tr"));
      Object.entries(row.data || {}).forEach(([k, v]) => { tr.dataset[k] = v; });
      row.forEach((cell) => {
        const td = tr.appendChild(el("td"));
        if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell ?? "";
      });
    });
  }

  function list(id, lines, empty) {
    const ul = $(id);
    ul.replaceChildren();
    (lines.length ? lines : [empty]).forEach((line) => {
      ul.appendChild(line instanceof Node ? line : el("li", line));
    });
  }

  const short = (commit) => (commit || "none").slice(0, 12);

  function showHosts(doc, view) {
    fill("hosts", ["host", "roles", "health", "detail"], Object.entries(doc.hosts).map(
      ([name, host]) => Object.assign([name, host.roles.join(", ") || "-", health(host.health),
                                       view.details[name] || ""], {data: {host: name}})),
      "no hosts in the webhook's inventory");
    list("findings", doc.findings.map((f) => {
      const li = el("li");
      li.appendChild(health(f.severity));
      li.appendChild(document.createTextNode(" " + f.subject + ": " + f.message));
      return li;
    }), "nothing: every check passed");
  }

  function showCode(doc) {
    fill("environments", ["environment", "commit", "agree", "servers"],
      Object.entries(doc.environments).map(([env, e]) => [
        env, short(e.commit), e.agree ? "yes" : "NO",
        Object.entries(e.servers).map(([s, c]) => s.split(".")[0] + "=" + short(c)).join(", ")]),
      "no environment read");
    const members = [];
    Object.entries(doc.loadbalancers).forEach(([lb, v]) => Object.entries(v.members).forEach(
      ([m, s]) => members.push([lb, m, badge(s.state, s.state === "UP" ? "ok" :
                                                    s.state === "DOWN" ? "error" : "warning"),
                                s.sessions, s.detail])));
    fill("members", ["load balancer", "member", "state", "sessions", "detail"], members,
         "no load balancer");
  }

  function showAgents(doc, view) {
    list("ca", view.ca, "no CA read (no main in the webhook's inventory?)");
    const agents = doc.agents;
    fill("agents", ["agent (from " + agents.source + ")", "last report", "status"],
      agents.nodes.map((n) => Object.assign([n.name, n.last_report || "never", n.status || "-"],
                                            {data: {agent: n.name}})),
      "no agent known");
  }

  async function showDiagram(text) {
    const comparable = text.split("\n").filter((l) => !l.trim().startsWith("%%")).join("\n");
    if (comparable === drawnText) return;
    const note = $("diagram-note"), pre = $("diagram-text"), box = $("diagram");
    pre.textContent = text;
    if (!window.mermaid) {
      box.replaceChildren();
      note.textContent = "Mermaid's renderer (mermaid.min.js) is not installed on this " +
        "webhook: the diagram's Mermaid text is shown instead.";
      note.hidden = pre.hidden = false;
      drawnText = comparable;
      return;
    }
    try {
      const drawn = await window.mermaid.render("fleet-diagram-" + (++drawings), text);
      box.innerHTML = drawn.svg;  // Mermaid's own output, sanitized by it (strict)
      note.hidden = pre.hidden = true;
      drawnText = comparable;
    } catch (error) {
      box.replaceChildren();
      note.textContent = "Mermaid could not draw the diagram: " + error + "; its text:";
      note.hidden = pre.hidden = false;
    }
  }

  function showDeploys(deploys) {
    fill("deploys", ["id", "environment", "action", "commit", "status", "requested",
                     "finished", "error"], deploys.map((d) => {
      const link = el("a", d.id);
      link.href = "/deploys/" + encodeURIComponent(d.id);
      return Object.assign([link, d.environment, d.action, short(d.commit), badge(
        d.status, d.status === "ok" ? "ok" : d.status === "failed" ? "error" : "warning"),
        d.requested, d.finished || "", d.error], {data: {deploy: d.id}});
    }), "no deploy yet");
  }

  function show(data) {
    refresh = data.refresh;
    $("refresh").textContent = refresh;
    $("gathered").textContent = data.gathered_at || "not yet";
    $("took").textContent = data.took === null ? "" : " (in " + data.took + " s)";
    const problem = $("gather-error");
    problem.hidden = !data.error;
    problem.textContent = data.error ? "The last status gather failed at " + data.error_at +
      ": " + data.error + (data.stale ? ". What follows is from " + data.gathered_at +
      " (stale)." : ".") : "";
    document.body.classList.toggle("stale", Boolean(data.stale));
    showDeploys(data.deploys || []);
    const verdict = $("verdict");
    if (!data.status) {
      verdict.textContent = data.error ? "no status yet" : "gathering the fleet's status…";
      verdict.className = "verdict";
      return;
    }
    verdict.textContent = data.view.verdict;
    verdict.className = "verdict " + (data.status.healthy ? "healthy" : "attention");
    showHosts(data.status, data.view);
    showCode(data.status);
    showAgents(data.status, data.view);
    showDiagram(data.mermaid);
  }

  async function poll() {
    const failed = $("fetch-error");
    try {
      const reply = await fetch("/status.json", {cache: "no-store"});
      if (!reply.ok) throw new Error("HTTP " + reply.status);
      show(await reply.json());
      failed.hidden = true;
    } catch (error) {
      failed.textContent = "Cannot read /status.json (" + error.message + ") at " +
        new Date().toISOString() + "; trying again in " + refresh + " s.";
      failed.hidden = false;
    } finally {
      setTimeout(poll, refresh * 1000);
    }
  }

  if (window.mermaid) {
    window.mermaid.initialize({startOnLoad: false, securityLevel: "strict"});
  }
  poll();
})();

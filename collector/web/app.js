// libprof-collector's page: pick a service, a profile type, a value and a
// time range; see the merged profile as a flame graph (d3-flame-graph:
// hover for function, value and share, click to zoom, search to highlight);
// the traces list links each trace id to the flame graph of that trace alone.
//
// Everything comes from the JSON API (docs/COLLECTOR.md): /api/v1/services,
// /api/v1/flamegraph (the merged profile as a tree, capped in size by the
// server) and /api/v1/traces. What is shown lives in the URL's fragment
// (#service=..&type=..&value=..&range=..&trace=..), so a view can be linked.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const el = {
    controls: $("controls"), service: $("service"), type: $("type"), value: $("value"),
    range: $("range"), custom: $("custom"), from: $("from"), until: $("until"),
    auth: $("auth"), token: $("token"), title: $("title"), search: $("search"),
    reset: $("reset"), details: $("details"), message: $("message"), chart: $("chart"),
    pprofLine: $("pprof-line"), pprofCmd: $("pprof-cmd"), traces: $("traces"),
    noTraces: $("no-traces"), allSamples: $("all-samples"),
  };
  const RANGES = { "15m": "last 15 minutes", "1h": "last hour", "6h": "last 6 hours",
                   "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days" };
  const TRACES_SHOWN = 50;

  let services = null;        // /api/v1/services' list, loaded once per Show
  let chart = null;           // the d3-flame-graph chart drawn
  let shown = null;           // the /api/v1/flamegraph answer drawn
  let searchText = "";
  let token = sessionStorage.getItem("libprof-token") || "";
  let generation = 0;         // answers to a superseded view are dropped

  // ---- the API ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, text) { super(text); this.status = status; }
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== "") q.set(k, v);
    }
    const s = q.toString();
    return s ? "?" + s : "";
  }

  async function api(path, params) {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const r = await fetch(path + query(params || {}), { headers });
    if (r.status === 401) {
      el.auth.hidden = false;
      el.token.focus();
      throw new ApiError(401, "This collector asks for a token (--token): enter it above.");
    }
    if (!r.ok) throw new ApiError(r.status, (await r.text()).trim());
    return r.json();
  }

  // ---- the view's state: the URL fragment ------------------------------------

  function readState() {
    const h = new URLSearchParams(location.hash.slice(1));
    const s = {};
    for (const k of ["service", "type", "value", "range", "from", "until", "trace"]) {
      s[k] = h.get(k) || "";
    }
    if (!s.range) s.range = "1h";
    return s;
  }

  function stateHash(s) {
    const keep = {};
    for (const [k, v] of Object.entries(s)) {
      const isTime = k === "from" || k === "until";
      if (v && (!isTime || s.range === "custom")) keep[k] = v;
    }
    return "#" + new URLSearchParams(keep).toString();
  }

  function go(s) {
    const h = stateHash(s);
    if (h === location.hash) show(s);
    else location.hash = h;      // hashchange shows it
  }

  // The API's from/until for a state: "now-1h" and "now", or the custom times.
  function timeParams(s) {
    if (s.range !== "custom") return { from: "now-" + s.range, until: "now" };
    const iso = (v) => (v ? new Date(v).toISOString() : "");
    return { from: iso(s.from), until: iso(s.until) };
  }

  function stateFromControls(old) {
    const s = {
      service: el.service.value, type: el.type.value, value: el.value.value,
      range: el.range.value, from: el.from.value, until: el.until.value, trace: old.trace,
    };
    if (s.service !== old.service) { s.trace = ""; s.value = ""; }
    if (s.type !== old.type) s.value = "";
    return s;
  }

  // ---- formatting -------------------------------------------------------------

  function formatValue(v, unit) {
    const scaled = (x, steps) => {
      let i = 0;
      while (i + 1 < steps.length && Math.abs(x) >= steps[i + 1][0]) i++;
      const n = x / steps[i][0];
      return (i === 0 ? n.toLocaleString("en-US") : n.toPrecision(3)) + " " + steps[i][1];
    };
    if (unit === "nanoseconds") {
      return scaled(v, [[1, "ns"], [1e3, "µs"], [1e6, "ms"], [1e9, "s"]]);
    }
    if (unit === "bytes") {
      return scaled(v, [[1, "B"], [1024, "KiB"], [1048576, "MiB"], [1073741824, "GiB"]]);
    }
    const n = v.toLocaleString("en-US");
    return unit && unit !== "count" ? n + " " + unit : n;
  }

  function share(v) {
    const total = shown && shown.total;
    return total ? (100 * v / total).toFixed(v / total >= 0.001 ? 1 : 3) + "%" : "";
  }

  function unit() {
    const t = shown && shown.sample_types[shown.sample_index];
    return t ? t.unit : "";
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
                                                   '"': "&quot;", "'": "&#39;" }[c]));
  }

  // ---- controls ---------------------------------------------------------------

  function fillSelect(select, items, chosen) {
    select.textContent = "";
    for (const it of items) {
      const o = document.createElement("option");
      o.value = it.value;
      o.textContent = it.label;
      select.appendChild(o);
    }
    if (items.some((it) => it.value === chosen)) select.value = chosen;
    select.disabled = items.length === 0;
  }

  // Fills service and type from the services list; returns the state completed
  // with the choices made for it (first service; cpu, else its first type).
  function fillControls(s) {
    const names = services.map((x) => x.name);
    if (!names.includes(s.service)) s.service = names[0] || "";
    fillSelect(el.service, names.map((n) => ({ value: n, label: n })), s.service);
    const svc = services.find((x) => x.name === s.service);
    const types = svc ? svc.types.map((t) => t.type) : [];
    if (!types.includes(s.type)) s.type = types.includes("cpu") ? "cpu" : types[0] || "";
    fillSelect(el.type, types.map((t) => ({ value: t, label: t })), s.type);
    if (!RANGES[s.range] && s.range !== "custom") s.range = "1h";
    el.range.value = s.range;
    el.custom.hidden = el.range.value !== "custom";
    el.from.value = s.from;
    el.until.value = s.until;
    return s;
  }

  function fillValues(data, s) {
    const items = data.sample_types.map((t) => ({ value: t.type,
                                                  label: t.type + " (" + t.unit + ")" }));
    fillSelect(el.value, items, data.sample_types[data.sample_index].type);
    if (!s.value) el.value.value = data.sample_types[data.sample_index].type;
  }

  // ---- the flame graph -----------------------------------------------------------

  function draw() {
    if (chart) chart.destroy();
    chart = null;
    el.chart.textContent = "";
    if (!shown) return;
    const tip = flamegraph.tooltip.defaultFlamegraphTooltip().html((d) =>
      '<div class="fn">' + escapeHtml(d.data.name) + "</div>" +
      '<div class="v">' + escapeHtml(formatValue(d.data.value, unit())) + " · " +
      share(d.data.value) + " of the total" +
      (d.data.merged ? " · " + d.data.merged + " smaller frames merged" : "") +
      "</div>");
    chart = flamegraph.default()
      .width(Math.max(300, el.chart.clientWidth))
      .cellHeight(18)
      .inverted(true)           // root at the top: deep stacks do not push it out of view
      .minFrameSize(1)
      .transitionDuration(300)
      .tooltip(tip)
      .setLabelHandler((d) => d.data.name + " — " + formatValue(d.data.value, unit()) + " (" +
                              share(d.data.value) + ")")
      .setColorMapper((d, color) =>
        (d.data.merged !== undefined && !d.highlight ? "#c5cad1" : color))
      .setDetailsElement(el.details)
      .setDetailsHandler((text) => { el.details.textContent = text || searchText || "\u00a0"; })
      .setSearchMatch((d, term) => !!term && d.data.name.toLowerCase().includes(term.toLowerCase()))
      .setSearchHandler((results, sum) => {
        searchText = results.length
          ? results.length + (results.length === 1 ? " frame matches “" : " frames match “") +
            el.search.value + "”: " +
            formatValue(sum, unit()) + " (" + share(sum) + ")"
          : "nothing matches “" + el.search.value + "”";
        el.details.textContent = searchText;
      });
    d3.select(el.chart).datum(shown.root).call(chart);
    if (el.search.value) chart.search(el.search.value);
  }

  function search() {
    if (!chart) return;
    if (el.search.value) {
      chart.search(el.search.value);
    } else {
      searchText = "";
      chart.clear();
    }
  }

  function message(text, html) {
    el.message.hidden = !text && !html;
    if (html) el.message.innerHTML = html;
    else el.message.textContent = text || "";
  }

  // ---- traces -------------------------------------------------------------------------

  function fillTraces(list, s) {
    const body = el.traces.tBodies[0];
    body.textContent = "";
    for (const t of list.traces) {
      const tr = body.insertRow();
      if (t.trace_id === s.trace) tr.className = "selected";
      const id = tr.insertCell();
      id.className = "id";
      const a = document.createElement("a");
      a.href = stateHash(Object.assign({}, s, { trace: t.trace_id }));
      a.textContent = t.trace_id;
      a.title = "the flame graph of this trace alone";
      id.appendChild(a);
      const total = tr.insertCell();
      total.className = "num";
      total.textContent = formatValue(t.total, t.unit);
      const n = tr.insertCell();
      n.className = "num";
      n.textContent = t.profiles;
    }
    el.noTraces.hidden = list.traces.length > 0;
    el.traces.hidden = list.traces.length === 0;
  }

  // ---- showing a state ---------------------------------------------------------------

  function setTitle(s) {
    el.title.textContent = "";
    const what = s.service + " · " + s.type + " · " +
      (s.range === "custom" ? (s.from || "…") + " to " + (s.until || "now") : RANGES[s.range]);
    el.title.append(what);
    if (s.trace) {
      const span = document.createElement("span");
      span.className = "trace";
      span.textContent = " · trace " + s.trace;
      el.title.append(span);
    }
    el.allSamples.hidden = !s.trace;
    el.allSamples.firstChild.href = stateHash(Object.assign({}, s, { trace: "" }));
  }

  async function show(s) {
    const gen = ++generation;
    try {
      if (!services) services = (await api("/api/v1/services")).services;
      if (gen !== generation) return;
      s = fillControls(s);
      if (!s.service) {
        shown = null;
        draw();
        fillTraces({ traces: [] }, s);
        el.title.textContent = "No profiles yet";
        message("", "Nothing is stored yet. Profile a program into this collector with " +
                "<code>libprof run --endpoint " + escapeHtml(location.origin) +
                " -- PROGRAM</code>, " +
                "or send pprof files to <code>POST /ingest</code> (docs/COLLECTOR.md).");
        return;
      }
      setTitle(s);
      message("Loading…");
      const t = timeParams(s);
      const common = { service: s.service, type: s.type, from: t.from, until: t.until };
      const [graph, traces] = await Promise.all([
        api("/api/v1/flamegraph",
            Object.assign({ trace_id: s.trace, sample_index: s.value }, common))
          .catch((e) => e),
        api("/api/v1/traces", Object.assign({ limit: TRACES_SHOWN }, common)).catch((e) => e),
      ]);
      if (gen !== generation) return;
      fillTraces(traces instanceof Error ? { traces: [] } : traces, s);
      if (graph instanceof Error) {
        shown = null;
        draw();
        el.pprofLine.hidden = true;
        message(graph.status === 404 ? "No " + s.type + " profiles of " + s.service +
                (s.trace ? " with this trace" : "") + " in this time range." : graph.message);
        return;
      }
      shown = graph;
      fillValues(graph, s);
      message("");
      draw();
      el.details.textContent = searchText || "\u00a0";
      el.pprofCmd.textContent = "go tool pprof -http=: '" + location.origin + "/api/v1/profiles" +
        query(Object.assign({}, common, { trace_id: s.trace })) + "'";
      el.pprofLine.hidden = false;
      if (graph.nodes > graph.shown) {
        el.details.textContent = graph.profiles + " profiles; " + graph.shown + " of " +
          graph.nodes + " frames kept, the smallest merged into [other]";
      } else {
        el.details.textContent = graph.profiles + " profile" + (graph.profiles === 1 ? "" : "s") +
          ", total " + formatValue(graph.total, unit());
      }
    } catch (e) {
      if (gen !== generation) return;
      message(e.message || String(e));
    }
  }

  // ---- events -------------------------------------------------------------------------

  el.controls.addEventListener("submit", (ev) => {
    ev.preventDefault();
    services = null;            // Show reloads the services list too
    go(stateFromControls(readState()));
  });
  for (const sel of [el.service, el.type, el.value]) {
    sel.addEventListener("change", () => go(stateFromControls(readState())));
  }
  el.range.addEventListener("change", () => {
    el.custom.hidden = el.range.value !== "custom";
    if (el.range.value !== "custom") go(stateFromControls(readState()));
  });
  el.search.addEventListener("input", search);
  el.search.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") { el.search.value = ""; search(); }
  });
  el.reset.addEventListener("click", () => chart && chart.resetZoom());
  el.auth.addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = el.token.value.trim();
    sessionStorage.setItem("libprof-token", token);
    el.auth.hidden = true;
    services = null;
    show(readState());
  });
  window.addEventListener("hashchange", () => show(readState()));
  let resizing = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(draw, 200);
  });

  show(readState());
})();

// The drmaa2 serve dashboard: plain JS, no dependencies, no external fetches.
// Every request carries the bearer token; the event stream is read with fetch (EventSource cannot
// send headers). All data reaches the page through textContent and attributes, never as HTML.
"use strict";
(() => {
  const TOKEN_KEY = "pydrmaa2.token";
  const SESSION_KEY = "pydrmaa2.session";
  const TERMINAL = new Set(["DONE", "FAILED"]);
  const STATE_ORDER = ["DONE", "FAILED", "RUNNING", "SUSPENDED", "QUEUED", "QUEUED_HELD",
    "REQUEUED", "REQUEUED_HELD", "UNDETERMINED"];
  const OUTPUT_EVERY_MS = 2000;
  const SESSIONS_EVERY_MS = 15000;
  const STREAM_SILENCE_MS = 45000; // the server pings every 15 s: this long without a byte is a drop
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;

  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  const norm = (s) => String(s || "undetermined").toUpperCase();
  const sleep = (ms, signal) => new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (signal) signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, {once: true});
  });

  const st = {
    token: null,
    session: null,     // the selected session's name
    jobs: new Map(),   // id -> JobView (state upper-cased)
    rows: new Map(),   // id -> <tr>
    arrays: new Map(), // id -> {view, el}
    stream: null,      // AbortController of the event stream
    job: null,         // the job shown in the detail panel
    outputTimer: null,
    infoTimer: null,
    arraysReload: null,
    sessionsTimer: null,
  };

  class ApiError extends Error {
    constructor(name, message, status) {
      super(message);
      this.name = name;
      this.status = status;
    }
  }

  async function apiError(r) {
    let name = `HTTP ${r.status}`, message = r.statusText;
    try {
      const body = await r.json();
      if (body && body.error) { name = body.error; message = body.message || ""; }
    } catch (_) { /* not JSON: keep the status line */ }
    return new ApiError(name, message, r.status);
  }

  function headers(extra) {
    return Object.assign({Authorization: `Bearer ${st.token}`}, extra || {});
  }

  async function api(path, {method = "GET", body, text = false, signal} = {}) {
    const init = {method, headers: headers(), cache: "no-store", signal};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await fetch(`/v1${path}`, init);
    if (!r.ok) throw await apiError(r);
    if (r.status === 204) return null;
    return text ? r.text() : r.json();
  }

  // ---- banner, connection indicator, login ----

  function showError(e) {
    $("banner-text").textContent = e && e.name ? `${e.name}: ${e.message}` : String(e);
    $("banner").hidden = false;
    if (e && e.status === 401) showLogin();
  }

  function hideBanner() { $("banner").hidden = true; $("banner-text").textContent = ""; }

  function setConn(status) {
    const el = $("conn");
    el.dataset.status = status;
    el.textContent = status;
  }

  function showLogin() {
    stopStream();
    clearInterval(st.sessionsTimer);
    $("main").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    $("token-input").focus();
  }

  function start() {
    $("login").hidden = true;
    $("main").hidden = false;
    $("logout").hidden = false;
    clearInterval(st.sessionsTimer);
    st.sessionsTimer = setInterval(() => loadSessions().catch(() => {}), SESSIONS_EVERY_MS);
    loadSessions(true).catch(() => {});
  }

  // ---- sessions ----

  async function loadSessions(first = false) {
    let sessions;
    try {
      sessions = await api("/sessions");
    } catch (e) {
      showError(e);
      throw e;
    }
    const ul = $("sessions");
    ul.replaceChildren();
    for (const s of sessions) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.session = s.name;
      b.className = "session";
      const name = document.createElement("span");
      name.textContent = s.name;
      const contact = document.createElement("small");
      contact.textContent = s.contact || "";
      b.append(name, contact);
      if (s.name === st.session) b.setAttribute("aria-current", "true");
      b.addEventListener("click", () => selectSession(s.name));
      li.append(b);
      ul.append(li);
    }
    if (!sessions.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = "No sessions.";
      ul.append(li);
    }
    const remembered = sessionStorage.getItem(SESSION_KEY);
    if (first && !st.session && sessions.some((s) => s.name === remembered)) selectSession(remembered);
  }

  async function selectSession(name) {
    stopStream();
    closeJob();
    hideBanner();
    st.session = name;
    sessionStorage.setItem(SESSION_KEY, name);
    st.jobs.clear();
    st.rows.clear();
    st.arrays.clear();
    $("jobs-body").replaceChildren();
    $("arrays").replaceChildren();
    $("session-title").textContent = name;
    $("session-view").hidden = false;
    for (const b of document.querySelectorAll("#sessions button")) {
      if (b.dataset.session === name) b.setAttribute("aria-current", "true");
      else b.removeAttribute("aria-current");
    }
    let jobs, arrays;
    try {
      [jobs, arrays] = await Promise.all([
        api(`/sessions/${enc(name)}/jobs`), api(`/sessions/${enc(name)}/arrays`)]);
    } catch (e) {
      if (st.session === name) showError(e);
      return;
    }
    if (st.session !== name) return;
    setArrays(arrays);
    for (const j of jobs) upsertJob(j);
    openStream(name);
  }

  // ---- arrays ----

  function setArrays(arrays) {
    for (const a of arrays) {
      const id = String(a.id);
      const known = st.arrays.get(id);
      if (known) known.view = a;
      else st.arrays.set(id, {view: a, el: null});
    }
    for (const id of st.arrays.keys()) renderArray(id);
    $("arrays").dataset.count = String(st.arrays.size);
    if (!st.arrays.size) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = "No arrays.";
      $("arrays").replaceChildren(p);
    }
  }

  function reloadArraysSoon() {
    if (st.arraysReload) return;
    const name = st.session;
    st.arraysReload = setTimeout(async () => {
      st.arraysReload = null;
      try {
        const arrays = await api(`/sessions/${enc(name)}/arrays`);
        if (st.session === name) setArrays(arrays);
      } catch (e) {
        if (st.session === name) showError(e);
      }
    }, 300);
  }

  function arrayCounts(view) {
    const ids = (view.job_ids || []).map(String);
    if (ids.length && ids.every((id) => st.jobs.has(id))) {
      const counts = {};
      for (const id of ids) {
        const s = st.jobs.get(id).state;
        counts[s] = (counts[s] || 0) + 1;
      }
      return {counts, total: ids.length};
    }
    const counts = {};
    for (const [k, v] of Object.entries(view.counts || {})) counts[norm(k)] = v;
    const sum = Object.values(counts).reduce((a, b) => a + b, 0);
    return {counts, total: Math.max(ids.length, sum)};
  }

  function renderArray(id) {
    const entry = st.arrays.get(id);
    if (!entry) return;
    if (!entry.el) {
      const box = $("arrays");
      const empty = box.querySelector(".empty");
      if (empty) empty.remove();
      const el = document.createElement("div");
      el.className = "array";
      el.dataset.arrayId = id;
      const head = document.createElement("div");
      head.className = "array-head";
      const title = document.createElement("strong");
      title.textContent = `Array ${id}`;
      const meta = document.createElement("span");
      meta.className = "meta";
      const label = document.createElement("span");
      label.className = "progress-label";
      label.id = `progress-label-${id}`;
      head.append(title, meta, label);
      const bar = document.createElement("div");
      bar.className = "progress";
      bar.id = `progress-${id}`;
      bar.setAttribute("role", "progressbar");
      bar.setAttribute("aria-valuemin", "0");
      bar.setAttribute("aria-label", `Array ${id}: tasks ended`);
      const counts = document.createElement("div");
      counts.className = "counts";
      counts.id = `counts-${id}`;
      el.append(head, bar, counts);
      box.append(el);
      entry.el = el;
    }
    const {counts, total} = arrayCounts(entry.view);
    const ended = (counts.DONE || 0) + (counts.FAILED || 0);
    const el = entry.el;
    const mp = entry.view.max_parallel;
    el.querySelector(".meta").textContent = mp ? ` · max_parallel ${mp}` : "";
    el.querySelector(".progress-label").textContent = `${ended}/${total} ended`;
    el.dataset.ended = String(ended);
    el.dataset.total = String(total);
    const bar = el.querySelector(".progress");
    bar.setAttribute("aria-valuemax", String(total));
    bar.setAttribute("aria-valuenow", String(ended));
    bar.dataset.ended = String(ended);
    bar.dataset.total = String(total);
    const states = STATE_ORDER.filter((s) => counts[s]).concat(
      Object.keys(counts).filter((s) => counts[s] && !STATE_ORDER.includes(s)));
    bar.replaceChildren(...states.map((s) => {
      const seg = document.createElement("span");
      seg.className = "seg";
      seg.dataset.state = s;
      seg.style.width = `${total ? (100 * counts[s]) / total : 0}%`;
      seg.title = `${s} ${counts[s]}`;
      return seg;
    }));
    const countsEl = el.querySelector(".counts");
    countsEl.replaceChildren(...states.map((s) => {
      const c = document.createElement("span");
      c.className = "count";
      c.dataset.state = s;
      c.dataset.count = String(counts[s]);
      c.textContent = `${s} ${counts[s]}`;
      return c;
    }));
  }

  // ---- jobs ----

  function cell(tr, text) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    tr.append(td);
    return td;
  }

  function upsertJob(raw) {
    const v = Object.assign({}, raw, {id: String(raw.id), state: norm(raw.state)});
    if (st.session && v.session && v.session !== st.session) return;
    const before = st.jobs.get(v.id);
    st.jobs.set(v.id, v);
    let tr = st.rows.get(v.id);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.jobId = v.id;
      tr.tabIndex = 0;
      tr.addEventListener("click", () => openJob(v.id));
      tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter") openJob(v.id); });
      cell(tr, v.id);
      cell(tr, "").className = "state";
      cell(tr, "").className = "sub-state";
      cell(tr, "");
      cell(tr, "");
      if (v.id === st.job) tr.classList.add("selected");
      $("jobs-body").append(tr);
      st.rows.set(v.id, tr);
    }
    tr.dataset.state = v.state;
    tr.cells[1].textContent = v.state;
    tr.cells[1].dataset.state = v.state;
    tr.cells[2].textContent = v.sub_state || "";
    tr.cells[3].textContent = v.array_id == null ? "" : String(v.array_id);
    tr.cells[4].textContent = v.task_index == null ? "" : String(v.task_index);
    if (v.array_id != null) {
      const aid = String(v.array_id);
      const entry = st.arrays.get(aid);
      if (!entry) reloadArraysSoon();
      else {
        const ids = (entry.view.job_ids || []).map(String);
        if (!ids.includes(v.id)) entry.view.job_ids = ids.concat([v.id]);
        renderArray(aid);
      }
    }
    if (v.id === st.job && (!before || before.state !== v.state || before.sub_state !== v.sub_state)) {
      showJobState();
      refreshInfoSoon();
      pollOutput();
    }
  }

  // ---- the event stream ----

  function stopStream() {
    if (st.stream) st.stream.abort();
    st.stream = null;
    setConn("offline");
  }

  function openStream(name) {
    stopStream();
    const ctl = new AbortController();
    st.stream = ctl;
    (async () => {
      let delay = BACKOFF_MIN_MS;
      while (!ctl.signal.aborted) {
        setConn("connecting");
        let fatal = false;
        try {
          await readEvents(`/events?session=${enc(name)}`, ctl.signal, () => {
            delay = BACKOFF_MIN_MS;
            setConn("live");
          });
        } catch (e) {
          if (ctl.signal.aborted) return;
          if (e instanceof ApiError) {
            showError(e);
            fatal = e.status === 401 || e.status === 404;
          }
        }
        if (ctl.signal.aborted) return;
        setConn("offline");
        if (fatal) return;
        await sleep(delay * (1 + Math.random() / 2), ctl.signal);
        delay = Math.min(delay * 2, BACKOFF_MAX_MS);
      }
    })();
  }

  async function readEvents(path, signal, onOpen) {
    const r = await fetch(`/v1${path}`, {
      headers: headers({Accept: "text/event-stream"}), cache: "no-store", signal});
    if (!r.ok) throw await apiError(r);
    onOpen();
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let watchdog = null;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => reader.cancel().catch(() => {}), STREAM_SILENCE_MS);
    };
    let buf = "";
    try {
      arm();
      for (;;) {
        const {value, done} = await reader.read();
        if (done) return;
        arm();
        buf += value;
        let m;
        while ((m = /(\r\n|\r|\n)\1/.exec(buf))) {
          const block = buf.slice(0, m.index);
          buf = buf.slice(m.index + m[0].length);
          dispatch(block);
        }
      }
    } finally {
      clearTimeout(watchdog);
    }
  }

  function dispatch(block) {
    let event = "message";
    const data = [];
    for (const line of block.split(/\r\n|\r|\n/)) {
      if (!line || line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? "" : line.slice(i + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (event !== "state" || !data.length) return;
    let view;
    try {
      view = JSON.parse(data.join("\n"));
    } catch (_) {
      return;
    }
    if (view && view.id != null) upsertJob(view);
  }

  // ---- the job panel ----

  function closeJob() {
    st.job = null;
    clearTimeout(st.outputTimer);
    clearTimeout(st.infoTimer);
    $("job-detail").hidden = true;
  }

  function openJob(id) {
    if (st.job) {
      const old = st.rows.get(st.job);
      if (old) old.classList.remove("selected");
    }
    st.job = id;
    const tr = st.rows.get(id);
    if (tr) tr.classList.add("selected");
    $("job-detail").hidden = false;
    $("job-detail").dataset.jobId = id;
    $("job-title").textContent = id;
    $("jobinfo").replaceChildren();
    $("job-output").textContent = "";
    showJobState();
    loadInfo();
    pollOutput();
  }

  function showJobState() {
    const v = st.jobs.get(st.job);
    const state = v ? v.state : "";
    const el = $("job-state");
    el.textContent = v && v.sub_state ? `${state} (${v.sub_state})` : state;
    el.dataset.state = state;
    $("job-detail").dataset.state = state;
    for (const b of document.querySelectorAll("#job-actions button")) b.disabled = TERMINAL.has(state);
  }

  function refreshInfoSoon() {
    clearTimeout(st.infoTimer);
    st.infoTimer = setTimeout(loadInfo, 200);
  }

  const SECONDS = new Set(["wallclock_time", "cpu_time"]);

  function formatValue(key, v) {
    if (v == null) return "—";
    if (Array.isArray(v)) return v.join(", ");
    if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${k} = ${x}`).join("\n");
    if (SECONDS.has(key) && typeof v === "number") return `${v.toFixed(v < 10 ? 2 : 0)} s`;
    return String(v);
  }

  async function loadInfo() {
    const id = st.job;
    if (!id) return;
    let info;
    try {
      info = await api(`/jobs/${enc(id)}/info`);
    } catch (e) {
      if (st.job === id) showError(e);
      return;
    }
    if (st.job !== id) return;
    const dl = $("jobinfo");
    dl.replaceChildren();
    for (const [k, v] of Object.entries(info || {})) {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.dataset.field = k;
      dd.textContent = formatValue(k, v);
      dl.append(dt, dd);
    }
  }

  async function pollOutput() {
    clearTimeout(st.outputTimer);
    const id = st.job;
    if (!id) return;
    const pre = $("job-output");
    try {
      const text = await api(`/jobs/${enc(id)}/output?tail=50`, {text: true});
      if (st.job !== id) return;
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.classList.remove("error");
      pre.textContent = text;
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    } catch (e) {
      if (st.job !== id) return;
      pre.classList.add("error");
      pre.textContent = `(${e.name}: ${e.message})`;
    }
    const v = st.jobs.get(id);
    if (st.job === id && !(v && TERMINAL.has(v.state))) {
      clearTimeout(st.outputTimer);
      st.outputTimer = setTimeout(pollOutput, OUTPUT_EVERY_MS);
    }
  }

  async function act(action) {
    const id = st.job;
    if (!id) return;
    const buttons = document.querySelectorAll("#job-actions button");
    for (const b of buttons) b.disabled = true;
    try {
      await api(`/jobs/${enc(id)}/${action}`, {method: "POST"});
      $("job-actions").dataset.last = `${action}:ok`;
    } catch (e) {
      $("job-actions").dataset.last = `${action}:${e.name}`;
      showError(e);
    } finally {
      if (st.job === id) {
        showJobState();
        refreshInfoSoon();
      }
    }
  }

  // ---- start ----

  function init() {
    const frag = new URLSearchParams(location.hash.slice(1));
    if (frag.has("token")) {
      sessionStorage.setItem(TOKEN_KEY, frag.get("token"));
      frag.delete("token");
      const rest = frag.toString();
      history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
    }
    st.token = sessionStorage.getItem(TOKEN_KEY);

    $("banner-close").addEventListener("click", hideBanner);
    $("login").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const token = $("token-input").value.trim();
      if (!token) return;
      $("token-input").value = "";
      st.token = token;
      sessionStorage.setItem(TOKEN_KEY, token);
      hideBanner();
      start();
    });
    $("logout").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      st.token = null;
      st.session = null;
      closeJob();
      $("session-view").hidden = true;
      showLogin();
    });
    $("sessions-refresh").addEventListener("click", () => loadSessions().catch(() => {}));
    $("job-actions").addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-action]");
      if (b) act(b.dataset.action);
    });

    if (st.token) start();
    else showLogin();
  }

  init();
})();

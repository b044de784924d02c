// ocrd's page: sign in with a token (kept in sessionStorage), upload, follow jobs, read results, requeue.
// Every piece of text from the server goes in with textContent: an OCR result reading "<script>" stays text.
"use strict";

const TOKEN_KEY = "ocrd.token";
const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem(TOKEN_KEY), me: null, timer: null, jobId: null, shown: null, blobs: [] };

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);  // strings become text nodes
  return node;
}

function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

async function problemText(res) {
  try {
    const problem = await res.json();
    return problem.detail || problem.title || res.statusText;
  } catch (e) {
    return res.statusText || String(res.status);
  }
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {}, { Authorization: "Bearer " + state.token });
  const res = await fetch(path, Object.assign({}, options, { headers, cache: "no-store" }));
  if (res.status === 401) {
    signOut("The token was refused: " + (await problemText(res)));
    throw new Error("unauthorized");
  }
  return res;
}

// ------------------------------------------------------------------ sign in

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  $("login-error").textContent = message || "";
  render();
}

async function signIn(token) {
  state.token = token;
  const res = await fetch("/api/v1/me", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
  if (!res.ok) {
    state.token = null;
    $("login-error").textContent = "The token was refused: " + (await problemText(res));
    return;
  }
  state.me = await res.json();
  sessionStorage.setItem(TOKEN_KEY, token);
  $("login-error").textContent = "";
  $("token-input").value = "";
  render();
}

// ------------------------------------------------------------------ views

function show(id) {
  for (const view of ["login-view", "jobs-view", "job-view", "quarantine-view"]) $(view).hidden = view !== id;
}

function render() {
  clearInterval(state.timer);
  const signedIn = Boolean(state.token && state.me);
  $("nav").hidden = $("signout").hidden = !signedIn;
  $("who").textContent = signedIn ? `${state.me.name} · ${state.me.role}` : "";
  if (!signedIn) {
    show("login-view");
    return;
  }
  const route = location.hash.replace(/^#\/?/, "");
  $("nav-jobs").removeAttribute("aria-current");
  $("nav-quarantine").removeAttribute("aria-current");
  let refresh;
  if (route.startsWith("jobs/")) {
    show("job-view");
    const id = decodeURIComponent(route.slice(5));
    if (state.jobId !== id) clearJob(id);  // never show one job's text under another's name, even briefly
    refresh = () => refreshJob(id);
  } else if (route === "quarantine") {
    show("quarantine-view");
    $("nav-quarantine").setAttribute("aria-current", "page");
    refresh = refreshQuarantine;
  } else {
    show("jobs-view");
    $("nav-jobs").setAttribute("aria-current", "page");
    setUpUploads();
    refresh = refreshJobs;
  }
  const tick = () => refresh().catch((e) => console.warn(e));
  tick();
  state.timer = setInterval(tick, POLL_MS);
}

function stateBadge(jobState) {
  return el("span", { class: "state state-" + jobState, text: jobState });
}

async function refreshJobs() {
  const res = await api("/api/v1/jobs?limit=50");
  if (!res.ok) return;
  const { jobs } = await res.json();
  const rows = jobs.map((job) => el("tr", { "data-job": job.id, "data-state": job.state },
    el("td", {}, el("a", { href: "#/jobs/" + encodeURIComponent(job.id), text: job.filename })),
    el("td", {}, stateBadge(job.state)),
    el("td", { text: job.reason || "" }),
    el("td", { class: "wide", text: when(job.created_at) }),
    el("td", { text: when(job.finished_at) })));
  $("jobs-table").tBodies[0].replaceChildren(...rows);
  $("jobs-empty").hidden = jobs.length > 0;
  $("jobs-updated").textContent = "updated " + new Date().toLocaleTimeString();
}

function forgetBlobs() {
  for (const url of state.blobs) URL.revokeObjectURL(url);
  state.blobs = [];
}

async function blobUrl(url) {
  const res = await api(url);
  if (!res.ok) throw new Error(await problemText(res));
  const object = URL.createObjectURL(await res.blob());
  state.blobs.push(object);
  return object;
}

async function download(url, name) {
  const object = await blobUrl(url);
  const link = el("a", { href: object, download: name });
  document.body.append(link);
  link.click();
  link.remove();
}

function clearJob(id) {
  state.jobId = id;
  state.shown = null;
  forgetBlobs();
  for (const part of ["job-title", "job-facts", "job-downloads", "job-message"]) $(part).replaceChildren();
  $("job-figure").hidden = $("job-text").hidden = true;
  $("job-text").textContent = "";
}

async function refreshJob(id) {
  const res = await api("/api/v1/jobs/" + encodeURIComponent(id));
  if (res.status === 404) {
    $("job-title").textContent = "No such job";
    $("job-message").textContent = await problemText(res);
    return;
  }
  if (!res.ok) return;
  const job = await res.json();
  if (state.jobId !== id) return;  // the user moved on to another job while this one was loading
  const key = job.id + "/" + job.state;
  $("job-title").replaceChildren(job.filename + " ", stateBadge(job.state));
  const facts = [["Job", job.id], ["Inbox", job.inbox], ["Path", job.rel_path], ["Size", job.bytes + " bytes"],
    ["Pages", job.pages ?? "–"], ["Attempts", job.attempts], ["Created", when(job.created_at)],
    ["Started", when(job.started_at)], ["Finished", when(job.finished_at)]];
  if (job.reason) facts.push(["Reason", job.reason]);
  if (job.detail) facts.push(["Detail", job.detail]);
  if (job.duplicate_of) facts.push(["Duplicate of", el("a", { href: "#/jobs/" + job.duplicate_of, text: job.duplicate_of })]);
  $("job-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, typeof v === "object" ? v : String(v))]));
  if (state.shown === key) return;  // outputs already on screen for this state
  state.shown = key;
  forgetBlobs();
  const outputs = (job.links && job.links.outputs) || {};
  const base = job.filename.replace(/\.[^.]*$/, "");
  $("job-downloads").replaceChildren(...Object.entries(outputs).map(([name, url]) =>
    el("a", { href: "#", class: "button", "data-output": name, text: name,
      onclick: (e) => { e.preventDefault(); download(url, base + "." + name).catch((err) => alert(err.message)); } })));
  $("job-message").textContent = job.state === "queued" || job.state === "running" ? "Waiting for the result…" : "";
  $("job-figure").hidden = $("job-text").hidden = true;
  const vis = outputs["vis.jpg"] || outputs["vis.png"];
  if (vis) {
    $("job-vis").src = await blobUrl(vis);
    $("job-figure").hidden = false;
  }
  if (outputs["result.txt"]) {
    const text = await api(outputs["result.txt"]);
    $("job-text").textContent = await text.text();
    $("job-text").hidden = false;
  }
}

async function refreshQuarantine() {
  const res = await api("/api/v1/jobs?state=quarantined&limit=200");
  if (!res.ok) return;
  const { jobs } = await res.json();
  const admin = state.me.role === "admin";
  const rows = jobs.map((job) => {
    const action = el("td", {});
    if (admin) {
      action.append(el("button", { type: "button", class: "requeue", text: "Requeue",
        onclick: (e) => requeue(job.id, e.target) }));
    }
    return el("tr", { "data-job": job.id },
      el("td", {}, el("a", { href: "#/jobs/" + encodeURIComponent(job.id), text: job.rel_path })),
      el("td", { text: job.reason || "" }),
      el("td", { class: "wide", text: job.detail || "" }),
      el("td", { text: when(job.finished_at) }),
      action);
  });
  $("quarantine-table").tBodies[0].replaceChildren(...rows);
  $("quarantine-empty").hidden = jobs.length > 0;
}

async function requeue(id, button) {
  button.disabled = true;
  const res = await api("/api/v1/jobs/" + encodeURIComponent(id) + "/requeue", { method: "POST" });
  button.replaceWith(el("span", { class: res.ok ? "hint" : "error", text: res.ok ? "requeued" : await problemText(res) }));
}

// ------------------------------------------------------------------ uploads

function setUpUploads() {
  const inboxes = state.me.upload_inboxes || [];
  $("dropzone").hidden = inboxes.length === 0;
  $("max-mb").textContent = state.me.max_upload_mb;
  const select = $("inbox-select");
  if (select.options.length !== inboxes.length) {
    select.replaceChildren(...inboxes.map((name) => el("option", { value: name, text: name })));
  }
}

function upload(file) {
  const bar = el("progress", { max: "100", value: "0" });
  const status = el("span", { class: "hint", text: "uploading" });
  $("uploads").prepend(el("li", {}, el("span", { class: "name", text: file.name }), bar, status));
  const query = "inbox=" + encodeURIComponent($("inbox-select").value) + "&filename=" + encodeURIComponent(file.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/v1/jobs?" + query);
  xhr.setRequestHeader("Authorization", "Bearer " + state.token);
  xhr.setRequestHeader("Content-Type", "application/octet-stream");
  xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) bar.value = String(100 * e.loaded / e.total); });
  xhr.addEventListener("load", () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
    if (xhr.status === 202) {
      bar.value = "100";
      status.replaceChildren("queued as ", el("a", { href: "#/jobs/" + encodeURIComponent(body.id), text: body.id }));
    } else {
      status.className = "error";
      status.textContent = `refused (${xhr.status} ${body.reason || ""}): ${body.detail || xhr.statusText}`;
    }
    refreshJobs().catch(() => {});
  });
  xhr.addEventListener("error", () => { status.className = "error"; status.textContent = "failed: the connection broke"; });
  xhr.send(file);
}

function setUp() {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("token-input").value.trim()).catch((err) => { $("login-error").textContent = err.message; });
  });
  $("signout").addEventListener("click", () => signOut(""));
  $("file-input").addEventListener("change", (e) => {
    for (const file of e.target.files) upload(file);
    e.target.value = "";
  });
  const zone = $("dropzone");
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    for (const file of e.dataTransfer.files) upload(file);
  });
  window.addEventListener("hashchange", () => { state.shown = null; render(); });
  if (state.token) {
    signIn(state.token).catch(() => signOut(""));
  } else {
    render();
  }
}

document.addEventListener("DOMContentLoaded", setUp);

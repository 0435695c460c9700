// recpilot web page: chat with streamed node events and a trace view. No external assets.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { thread: null, running: false, lastResult: null };

function newThread() {
  state.thread = "web-" + Math.random().toString(16).slice(2, 10);
  $("thread").textContent = state.thread;
  $("log").textContent = "";
  clearTrace();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function headers() {
  return { "Content-Type": "application/json", "Authorization": "Bearer " + $("key").value.trim() };
}

function say(kind, text) {
  const div = el("div", { class: "msg " + kind }, text);
  $("log").append(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

function clearTrace() {
  $("timeline").textContent = "";
  $("trace-extra").textContent = "";
  $("run-id").textContent = "";
}

function fmtMs(ms) { return ms >= 1000 ? (ms / 1000).toFixed(1) + " s" : ms.toFixed(1) + " ms"; }

// One row of the timeline; `node` is a node event or a node of a stored trace.
function stageRow(node, totalMs) {
  const scale = totalMs > 0 ? 100 / totalMs : 0;
  const bar = el("div", { class: "bar" });
  bar.style.left = Math.min(99, node.start_ms * scale) + "%";
  bar.style.width = Math.max(0.5, node.ms * scale) + "%";
  const row = el("div", { class: "stage" + (node.fell_back ? " fell-back" : ""),
    "data-node": node.node, title: node.note || "" },
    el("span", { class: "name" }, node.node), el("div", { class: "bar-wrap" }, bar),
    el("span", { class: "ms" }, fmtMs(node.ms)));
  const detail = el("div", { class: "stage-detail", hidden: "" });
  if (node.note) detail.append(el("div", { class: "note" + (node.fell_back ? " warn" : "") }, node.note));
  const cands = node.candidates || [];
  if (cands.length) {
    const table = el("table", { class: "candidates" },
      el("tr", {}, el("th", {}, "item"), el("th", {}, "sources"), el("th", {}, "coarse"),
         el("th", {}, "fine"), el("th", {}, "final")));
    const num = (x) => (x === null || x === undefined ? "" : Number(x).toFixed(3));
    for (const c of cands.slice(0, 20)) {
      table.append(el("tr", {}, el("td", {}, c.item_id), el("td", {}, (c.sources || []).join(",")),
        el("td", {}, num(c.coarse)), el("td", {}, num(c.fine)), el("td", {}, num(c.final))));
    }
    const count = node.n_candidates ?? cands.length;
    detail.append(el("div", {}, `candidates after ${node.node}: ${count}` +
      (count > 20 ? " (top 20 shown)" : "")), table);
  }
  for (const call of node.llm_calls || []) {
    const summary = `LLM ${call.purpose}: ${fmtMs(call.latency_ms)}, ` +
      `${call.prompt_tokens}+${call.completion_tokens} tokens, ${call.retries} retries` +
      (call.error ? `, error: ${call.error}` : "");
    const box = el("details", { class: "llm-call" }, el("summary", {}, summary));
    if (call.messages) {
      box.append(el("div", {}, "prompt:"),
        el("pre", {}, call.messages.map((m) => m.role + ": " + m.content).join("\n\n")),
        el("div", {}, "answer:"), el("pre", {}, call.response || ""));
    }
    detail.append(box);
  }
  row.addEventListener("click", () => { detail.hidden = !detail.hidden; });
  return [row, detail];
}

function renderTimeline(nodes, totalMs) {
  $("timeline").textContent = "";
  for (const n of nodes) $("timeline").append(...stageRow(n, totalMs));
}

function renderTrace(trace) {
  $("run-id").textContent = trace.run_id;
  renderTimeline(trace.nodes.map((n) => ({ ...n, n_candidates: n.candidates ? n.candidates.length : null })),
    trace.total_ms);
  const extra = $("trace-extra");
  extra.textContent = "";
  extra.append(el("p", {}, `total ${fmtMs(trace.total_ms)}, ${trace.llm_calls} LLM calls ` +
    `(${trace.prompt_tokens}+${trace.completion_tokens} tokens)`));
  for (const f of trace.fallbacks) extra.append(el("p", { class: "warn" }, "fallback: " + f));
  if (trace.dropped_ids.length) {
    extra.append(el("p", { class: "warn" }, "dropped invalid ids: " + trace.dropped_ids.join(", ")));
  }
  renderTools(extra, state.lastResult);
}

// The controller's chosen tools with their arguments, and its repairs (agent turns).
function renderTools(extra, result) {
  if (!result || !result.tools || !result.tools.length) return;
  const ctl = result.controller || {};
  const list = el("ul", { class: "tools", id: "tool-calls" });
  for (const call of result.tools) {
    list.append(el("li", {}, `${call.name}(${JSON.stringify(call.args)})`));
  }
  extra.append(el("p", {}, `tools chosen by the ${ctl.source || "?"} controller:`), list);
  for (const r of ctl.repairs || []) extra.append(el("p", { class: "warn" }, "repair: " + r));
}

function renderItems(bubble, result) {
  // the reply lists the titles after "Here are N picks:"; the list below shows them, so
  // keep the tools' lines and the lead-in only
  const lines = result.reply.split("\n").map((line) => {
    const cut = line.startsWith("Here are ") ? line.indexOf(":") : -1;
    return cut >= 0 && result.items.length ? line.slice(0, cut + 1) : line;
  });
  bubble.textContent = lines.join("\n");
  const list = el("ol", { class: "items", id: "items" });
  for (const it of result.items) {
    list.append(el("li", { class: "item", "data-item-id": it.item_id },
      el("span", { class: "title" }, it.title + (it.year ? ` (${it.year})` : "")),
      el("div", { class: "reason" }, it.reason)));
  }
  document.querySelectorAll("#items").forEach((old) => old.removeAttribute("id"));
  bubble.append(list);
}

// Parse a text/event-stream body from fetch(): yields {event, data}.
async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}

async function send(message) {
  state.running = true;
  $("send").disabled = true;
  say("user", message);
  const bubble = say("bot", "thinking …");
  clearTrace();
  const live = [];
  try {
    const body = { thread_id: state.thread, message, k: Number($("k").value) || 5 };
    const user = $("user").value.trim();
    if (user) body.user_id = user;
    const response = await fetch("/v1/chat", { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!response.ok) {
      const err = await response.json().catch(() => ({ error: response.statusText }));
      throw new Error(err.error || response.statusText);
    }
    for await (const { event, data } of sseEvents(response)) {
      const payload = JSON.parse(data);
      if (event === "node") {
        live.push(payload);
        bubble.textContent = `running … ${payload.node} done (${fmtMs(payload.ms)})`;
        renderTimeline(live, payload.end_ms);
      } else if (event === "result") {
        state.lastResult = payload;
        renderItems(bubble, payload);
        $("status").textContent = `run ${payload.run_id}: ${fmtMs(payload.total_ms)}`;
        const trace = await fetch("/v1/traces/" + payload.run_id, { headers: headers() });
        if (trace.ok) renderTrace(await trace.json());
      } else if (event === "error") {
        throw new Error(payload.error);
      }
    }
  } catch (err) {
    bubble.className = "msg error";
    bubble.textContent = "error: " + err.message;
  } finally {
    state.running = false;
    $("send").disabled = false;
  }
}

$("chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const message = $("message").value.trim();
  if (!message || state.running) return;
  $("message").value = "";
  localStorage.setItem("recpilot-key", $("key").value.trim());
  send(message);
});
$("new-thread").addEventListener("click", newThread);
$("key").value = new URLSearchParams(location.hash.slice(1)).get("key") || localStorage.getItem("recpilot-key") || "";
newThread();

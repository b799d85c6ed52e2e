// The console's one script: copy buttons, confirmations, the providers table refresh and the
// playground's streamed answer. The pages work without it (forms post and pages come back).
"use strict";

const csrfToken = () => document.querySelector('meta[name="csrf-token"]').content;

function copyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copy);
      const status = document.querySelector(`[data-copied-for="${button.dataset.copy}"]`);
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
      } catch {
        document.execCommand("copy"); // older browsers, or the clipboard API refused
      }
      if (status) status.textContent = "Copied to the clipboard.";
    });
  }
}

function confirmations() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

function refreshingTables() {
  for (const box of document.querySelectorAll("[data-refresh]")) {
    const every = Number(box.dataset.every) || 5000;
    const refresh = async () => {
      if (document.hidden) return;
      try {
        const response = await fetch(box.dataset.refresh, { credentials: "same-origin" });
        if (response.redirected) { window.location.reload(); return; }
        if (response.ok) box.innerHTML = await response.text(); // our own escaped HTML
      } catch { /* offline for a moment: the next round tries again */ }
    };
    window.setInterval(refresh, every);
  }
}

// One Server-Sent Event's JSON, or "[DONE]".
function* events(buffer) {
  for (const frame of buffer) {
    for (const line of frame.split("\n")) {
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      yield data === "[DONE]" ? data : JSON.parse(data);
    }
  }
}

// Dollars as the pages write them (formats.usd): to the cent from $1, else 4 significant digits.
function usd(value) {
  if (value === 0 || Math.abs(value) >= 1) {
    return "$" + value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  const decimals = Math.min(8, Math.max(2, 3 - Math.floor(Math.log10(Math.abs(value)))));
  return "$" + value.toFixed(decimals).replace(/(\.\d\d\d*?)0+$/, "$1");
}

// The stream's last usage says what the request cost: dollars, or null for a model without a price.
function costText(cost) {
  if (cost === undefined) return "";
  return cost === null ? " · cost unknown (the model has no price)" : ` · cost ${usd(cost)}`;
}

function playground() {
  const form = document.getElementById("playground");
  if (!form) return;
  const output = document.getElementById("answer");
  const status = document.getElementById("answer-status");
  const send = document.getElementById("send");
  const stop = document.getElementById("stop");
  let controller = null;

  stop.addEventListener("click", () => controller && controller.abort());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const fields = Object.fromEntries(new FormData(form));
    delete fields.csrf_token;
    controller = new AbortController();
    output.textContent = "";
    output.classList.add("streaming");
    status.textContent = "Waiting for the answer…";
    send.disabled = true;
    stop.hidden = false;
    try {
      const response = await fetch(form.dataset.stream, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify(fields),
        signal: controller.signal,
      });
      if (response.status === 401) { window.location.reload(); return; }
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        status.textContent = body && body.error ? `Error: ${body.error.message}` : `Error ${response.status}`;
        return;
      }
      status.textContent = "Streaming…";
      await readStream(response, output, status);
    } catch (error) {
      status.textContent = error.name === "AbortError" ? "Stopped." : "The connection was lost.";
    } finally {
      output.classList.remove("streaming");
      send.disabled = false;
      stop.hidden = true;
      controller = null;
    }
  });
}

async function readStream(response, output, status) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    const frames = pending.split("\n\n");
    pending = frames.pop();
    for (const event of events(frames)) {
      if (event === "[DONE]") continue;
      if (event.error) { status.textContent = `Error: ${event.error.message}`; continue; }
      if (event.delta && event.delta.content) output.textContent += event.delta.content;
      if (event.usage) {
        const u = event.usage;
        status.textContent = `Done: ${event.provider || ""} ${event.model || ""} · ${u.prompt_tokens} prompt + ${u.completion_tokens} completion tokens${costText(u.cost_usd)}`;
      }
    }
  }
}

copyButtons();
confirmations();
refreshingTables();
playground();

// The console's small script: live job pages, the job document check, the target filter.
"use strict";

function followJob(container) {
  const state = document.getElementById("live-state");
  const source = new EventSource(container.dataset.liveUrl);
  const shown = new Map(); // part id -> the HTML last put there, so unchanged parts keep focus

  source.addEventListener("job", (event) => {
    const update = JSON.parse(event.data);
    if (update.gone) {
      state.textContent = "This job no longer exists.";
      source.close();
      return;
    }
    for (const [id, html] of Object.entries(update.parts)) {
      const part = document.getElementById(id);
      if (part && shown.get(id) !== html) {
        part.innerHTML = html;
        shown.set(id, html);
      }
    }
    container.dataset.status = update.status;
    state.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
  });
  source.addEventListener("error", () => {
    state.textContent = "Connection lost; reconnecting…";
  });
  source.addEventListener("open", () => {
    state.textContent = "Updates live.";
  });
}

function checkDocument(form) {
  const area = form.querySelector("textarea[data-json]");
  const note = document.getElementById("document-check");
  const fromTemplate = () => form.querySelector("#source-template")?.checked;
  const check = () => {
    if (fromTemplate()) {
      area.setCustomValidity("");
      note.textContent = "";
      return true;
    }
    try {
      const value = JSON.parse(area.value);
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        throw new Error("the document must be a JSON object");
      }
      const size = new TextEncoder().encode(area.value).length;
      if (size > 32768) throw new Error("the document is " + size + " bytes; the limit is 32768");
      area.setCustomValidity("");
      note.textContent = "Valid JSON.";
      return true;
    } catch (error) {
      const message = "Not a valid job document: " + error.message;
      area.setCustomValidity(message);
      note.textContent = message;
      return false;
    }
  };
  area.addEventListener("input", check);
  form.addEventListener("submit", (event) => {
    if (!check()) {
      event.preventDefault();
      area.focus();
    }
  });
}

function filterOptions(input) {
  const lists = input.dataset.filters.split(" ").map((id) => document.getElementById(id));
  input.addEventListener("input", () => {
    const text = input.value.toLowerCase();
    for (const list of lists) {
      for (const option of list.options) {
        option.hidden = text !== "" && !option.value.toLowerCase().includes(text) && !option.selected;
      }
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const job = document.querySelector("[data-live-url]");
  if (job && window.EventSource) followJob(job);
  const form = document.querySelector("form.create-job");
  if (form) checkDocument(form);
  document.querySelectorAll("input[data-filters]").forEach(filterOptions);
});

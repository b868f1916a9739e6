// Shared building blocks of every page: elements, errors, the data panel with its upload and
// job progress, result cards with scores.

let uid = 0;
export const nextId = (prefix) => `${prefix}-${++uid}`;

// h("button", { class: "primary", onclick }, "Search") -> <button class="primary">Search</button>
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export const formatCount = (n) => new Intl.NumberFormat("en").format(n);
export const formatScore = (score) => score.toFixed(3);

// A message from an API error (or any error), announced to screen readers.
export function errorBox(error) {
  const box = h("div", { class: "error", role: "alert" }, h("strong", {}, "Error: "), error.message);
  if (error.status) box.append(h("span", { class: "muted" }, ` (HTTP ${error.status}${error.requestId ? `, request ${error.requestId}` : ""})`));
  return box;
}

// Runs a request while showing a busy state in `area`; errors end up in `area` too.
export async function busy(area, label, work) {
  area.replaceChildren(h("p", { class: "muted loading", role: "status" }, label));
  area.setAttribute("aria-busy", "true");
  try {
    return await work();
  } catch (error) {
    area.replaceChildren(errorBox(error));
    return undefined;
  } finally {
    area.removeAttribute("aria-busy");
  }
}

export function emptyState(text) {
  return h("p", { class: "empty", role: "status" }, text);
}

export function scoreMeter(score, label = "score") {
  return h("span", { class: "score" },
    h("meter", { min: -1, max: 1, low: 0.3, high: 0.6, optimum: 1, value: score, "aria-label": label }),
    h("span", { class: "score-value" }, `${label} ${formatScore(score)}`));
}

// A result card: a picture (or none), a title, a score and actions.
export function resultCard({ image, alt, title, subtitle, score, scoreLabel, actions = [] }) {
  return h("li", { class: "result" },
    image ? h("img", { src: image, alt: alt || title, loading: "lazy", decoding: "async" }) : null,
    h("div", { class: "result-body" },
      h("span", { class: "result-title" }, title),
      subtitle ? h("span", { class: "muted small" }, subtitle) : null,
      score !== undefined && score !== null ? scoreMeter(score, scoreLabel) : null,
      actions.length ? h("div", { class: "actions" }, actions) : null));
}

export function resultGrid(cards, emptyText) {
  return cards.length ? h("ul", { class: "grid", role: "list" }, cards) : emptyState(emptyText);
}

// A file picker that is also a drop zone; keyboard users reach the input itself.
export function dropZone({ label, accept, onFile, multiple = false }) {
  const id = nextId("file");
  const input = h("input", { type: "file", id, accept, multiple, class: "visually-hidden" });
  const take = (files) => {
    if (files.length) onFile(...(multiple ? [Array.from(files)] : [files[0]]));
  };
  input.addEventListener("change", () => {
    take(input.files);
    input.value = "";
  });
  const zone = h("label", { class: "drop", for: id }, h("span", {}, label), h("span", { class: "muted small" }, `Drop ${multiple ? "files" : "a file"} here or click to choose`), input);
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    take(event.dataTransfer.files);
  });
  return zone;
}

// Follows a load job through its event stream: a progress bar, counters, then the outcome
// with every item error listed.
export function jobProgress(api, job, onEnd) {
  const bar = h("progress", { max: 1, "aria-label": `Loading ${job.source}` });
  const status = h("p", { class: "job-status", role: "status", "aria-live": "polite" });
  const cancel = h("button", { type: "button", class: "small", onclick: async () => {
    cancel.disabled = true;
    try {
      await api.post(`jobs/${job.id}/cancel`);
    } catch (error) {
      panel.append(errorBox(error)); // e.g. 409: it had already finished
    }
  } }, "Cancel");
  const panel = h("div", { class: "job", "data-status": job.status }, bar, h("div", { class: "row" }, status, cancel));

  const show = (current) => {
    panel.dataset.status = current.status;
    if (current.total) {
      bar.max = current.total;
      bar.value = current.done;
    }
    const counts = `added ${formatCount(current.added)}, duplicates ${formatCount(current.duplicates)}, failed ${formatCount(current.failed)}`;
    const of = current.total ? ` / ${formatCount(current.total)}` : "";
    status.textContent = `${current.source}: ${current.status}, ${formatCount(current.done)}${of} items (${counts})`;
  };

  const end = (final) => {
    show(final);
    cancel.remove();
    if (final.total === 0 || final.total === null) {
      bar.max = 1;
      bar.value = 1;
    }
    if (final.error) panel.append(h("div", { class: "error", role: "alert" }, final.error));
    if (final.errors.length) {
      panel.append(h("details", { class: "item-errors", open: true },
        h("summary", {}, `${formatCount(final.failed)} item${final.failed === 1 ? "" : "s"} could not be loaded${final.errors_truncated ? " (first ones listed)" : ""}`),
        h("ul", {}, final.errors.map((e) => h("li", {}, h("code", {}, e.item), ": ", e.reason)))));
    }
    onEnd(final);
  };

  show(job);
  const source = api.events(`jobs/${job.id}/events`);
  source.addEventListener("progress", (event) => show(JSON.parse(event.data)));
  source.addEventListener("end", (event) => {
    source.close();
    end(JSON.parse(event.data));
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      panel.append(errorBox(new Error("Lost the job's progress stream; reload the page to see its state.")));
    }
  });
  return panel;
}

// The data panel every page has: which collection, how big, load the sample or your files.
// `field` and `multiple`: how the app's load route takes files ("file", one; "files", many).
export function dataPanel(ctx, { noun, fileLabel, field = "file", multiple = false }) {
  const listId = nextId("collections");
  const inputId = nextId("collection");
  const input = h("input", { id: inputId, value: ctx.collection, list: listId, autocomplete: "off", spellcheck: "false", pattern: "[a-z](_?[a-z0-9])*", maxlength: 40 });
  const names = h("datalist", { id: listId });
  const size = h("p", { class: "size", role: "status", "aria-live": "polite" });
  const jobs = h("div", { class: "jobs" });

  async function refresh() {
    try {
      const all = await ctx.api.get("collections");
      names.replaceChildren(...all.map((c) => h("option", { value: c.name })));
      const mine = all.find((c) => c.name === ctx.collection);
      size.textContent = mine ? `${formatCount(mine.count)} ${noun} in “${mine.name}”` : `“${ctx.collection}” is empty: load the sample or your own file.`;
      size.dataset.count = mine ? mine.count : 0;
    } catch (error) {
      size.replaceChildren(errorBox(error));
    }
  }

  function start(label, request) {
    const slot = h("div", { class: "job" }, h("p", { class: "muted", role: "status" }, `Sending ${label}…`));
    jobs.prepend(slot);
    request().then(
      (job) => slot.replaceWith(jobProgress(ctx.api, job, refresh)),
      (error) => slot.replaceChildren(errorBox(error)),
    );
  }

  input.addEventListener("change", () => {
    ctx.collection = input.value.trim() || ctx.link.collection;
    input.value = ctx.collection;
    refresh();
    ctx.changed();
  });

  const sample = h("button", { type: "button", onclick: () => start("the sample", () => ctx.api.post(`collections/${encodeURIComponent(ctx.collection)}/loads/sample`)) }, "Load the sample data");
  const upload = dropZone({
    label: fileLabel,
    accept: ctx.link.formats.join(","),
    multiple,
    onFile: (chosen) => {
      const files = multiple ? chosen : [chosen];
      const form = new FormData();
      for (const file of files) form.append(field, file, file.name);
      const label = files.length === 1 ? files[0].name : `${files.length} files`;
      start(label, () => ctx.api.postForm(`collections/${encodeURIComponent(ctx.collection)}/loads`, form));
    },
  });

  refresh();
  return h("section", { class: "card", "aria-labelledby": `${inputId}-heading` },
    h("h2", { id: `${inputId}-heading` }, "Data"),
    h("div", { class: "row" },
      h("label", { for: inputId }, "Collection"), input, names, size),
    h("div", { class: "row" }, sample, upload),
    jobs);
}

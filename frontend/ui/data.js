// The data panel every page has: choose a collection (its name checked as you type), create
// it (with the app's options) or drop it, load the sample or your files into it, follow the
// loads, read its job history and browse its items.

import { busy, confirmStep, dropZone, errorBox, formatCount, h, nextId, quoted } from "./components.js";
import { itemsBrowser } from "./items.js";
import { jobHistory, jobProgress } from "./jobs.js";

// The rule of common/names.py (NAME_PATTERN, MAX_NAME_LENGTH), said as a sentence.
const NAME = /^[a-z](?:_?[a-z0-9])*$/;
const MAX_NAME = 40;
export const NAME_RULE = `Use lower-case letters, digits and single underscores, starting with a letter (at most ${MAX_NAME} characters).`;
export const isValidName = (name) => name.length <= MAX_NAME && NAME.test(name);

// `data`: what the page declares (see README): noun, fileLabel, multiple, item.
export function dataPanel(ctx, data) {
  const inputId = nextId("collection");
  const hintId = nextId("hint");
  const listId = nextId("collections");
  const input = h("input", { id: inputId, value: ctx.collection, list: listId, autocomplete: "off", spellcheck: "false", maxlength: MAX_NAME, "aria-describedby": hintId });
  const names = h("datalist", { id: listId });
  const hint = h("p", { id: hintId, class: "data-hint small", "aria-live": "polite" });
  const view = h("div");
  let shown = null; // the chosen collection's view; closed when another is chosen

  const listed = (all) => names.replaceChildren(...all.map((c) => h("option", { value: c.name })));

  function check() {
    const valid = isValidName(input.value.trim());
    input.setAttribute("aria-invalid", String(!valid));
    hint.className = `data-hint small${valid ? "" : " invalid"}`;
    hint.textContent = valid ? "" : `${NAME_RULE} Still showing ${quoted(ctx.collection)}.`;
    return valid;
  }

  function choose(name) {
    if (shown) shown.close(); // its live panels and their event streams go with it
    ctx.collection = name;
    shown = collectionView(ctx, data, listed);
    view.replaceChildren(shown.node);
    ctx.changed();
  }

  input.addEventListener("input", check);
  input.addEventListener("change", () => {
    // Nothing is sent for a name the API would refuse.
    if (check() && input.value.trim() !== ctx.collection) choose(input.value.trim());
  });

  shown = collectionView(ctx, data, listed);
  view.append(shown.node);
  return h("section", { class: "card", "aria-labelledby": `${inputId}-heading` },
    h("h2", { id: `${inputId}-heading` }, "Data"),
    h("div", { class: "row" }, h("label", { for: inputId }, "Collection"), input, names),
    hint,
    view);
}

// Everything about one collection. `listed(all)` hears of every collection list read.
function collectionView(ctx, data, listed) {
  const name = ctx.collection;
  const api = ctx.api;
  const path = (rest = "") => `collections/${encodeURIComponent(name)}${rest}`;
  const stop = new AbortController(); // the whole view: closed when another is chosen
  let loads = new AbortController(); // the live panels: closed too when the collection is dropped
  const followed = new Set(); // jobs shown live here, left out of the history
  const size = h("p", { class: "size", role: "status", "aria-live": "polite" });
  const manage = h("div", { class: "manage" });
  const live = h("div", { class: "jobs" });
  const more = h("div");
  const history = jobHistory(api, name, followed);
  // A page without `data.item` browses its collection its own way (videos: their storyboards).
  const items = data.item ? itemsBrowser({ api, collection: name, noun: data.noun, look: data.item, onDeleted: refresh }) : null;
  let reads = 0; // the latest read of the collection list; an earlier one gives way

  async function refresh() {
    const ticket = ++reads;
    let all;
    try {
      all = await api.get("collections");
    } catch (error) {
      if (ticket === reads && !stop.signal.aborted) size.replaceChildren(errorBox(error));
      return;
    }
    if (ticket !== reads || stop.signal.aborted) return;
    listed(all);
    const mine = all.find((c) => c.name === name);
    size.dataset.count = mine ? mine.count : 0;
    size.textContent = mine
      ? `${formatCount(mine.count)} ${data.noun} in ${quoted(name)}`
      : `There is no collection ${quoted(name)} yet: create it, or load the sample or a file into it.`;
    manage.replaceChildren(mine ? dropStep(mine) : createForm());
    if (!mine) {
      more.replaceChildren();
      return;
    }
    more.replaceChildren(history.node, items ? items.node : "");
    await Promise.all([history.refresh(), items ? items.show(mine.count) : null]);
    if (ctx.onRefresh) ctx.onRefresh(); // a page that lists the collection its own way
  }

  function dropStep(mine) {
    return confirmStep({
      action: `Drop ${quoted(name)}…`,
      question: `Drop ${quoted(name)} and its ${formatCount(mine.count)} ${data.noun}? This cannot be undone.`,
      yes: "Yes, drop it",
      onConfirm: async () => {
        await api.delete(path());
        loads.abort(); // its loads are gone with it: stop following them
        loads = new AbortController();
        live.replaceChildren();
        await refresh();
        ctx.changed();
      },
    });
  }

  function createForm() {
    const options = optionInputs(ctx.link.options);
    const outcome = h("div");
    const create = h("button", { type: "submit" }, `Create ${quoted(name)}`);
    return h("form", { class: "create", onsubmit: async (event) => {
      event.preventDefault();
      create.disabled = true;
      const body = options ? { name, options: options.values() } : { name };
      const made = await busy(outcome, `Creating ${quoted(name)}…`, () => api.post("collections", body));
      create.disabled = false;
      if (made) await refresh();
    } }, options ? options.node : null, h("div", { class: "row" }, create), outcome);
  }

  // A load: its live panel first, then its place in the count, the history and the items.
  function start(label, request) {
    const slot = h("div", { class: "job" }, h("p", { class: "muted", role: "status" }, `Sending ${label}…`));
    live.prepend(slot);
    request().then(
      (job) => {
        followed.add(job.id);
        slot.replaceWith(jobProgress(api, job, { onEnd: refresh, signal: loads.signal }));
      },
      (error) => slot.replaceChildren(errorBox(error)),
    );
  }

  const sample = h("button", { type: "button", onclick: () => start("the sample", () => api.post(path("/loads/sample"))) }, `Load the sample into ${quoted(name)}`);
  const upload = dropZone({
    label: `${data.fileLabel} into ${quoted(name)}`,
    accept: ctx.link.formats.join(","),
    multiple: data.multiple,
    onFile: (chosen) => {
      const files = data.multiple ? chosen : [chosen];
      const form = new FormData();
      for (const file of files) form.append("file", file, file.name);
      const label = files.length === 1 ? files[0].name : `${files.length} files`;
      start(label, () => api.postForm(path("/loads"), form));
    },
  });

  refresh();
  const node = h("div", { class: "collection" },
    size, manage,
    h("div", { class: "row" }, sample, upload),
    live, more);
  return { node, close: () => { stop.abort(); loads.abort(); } };
}

// One input per option of a new collection, from the JSON Schema the app publishes in
// GET apps; null when the app has no options. Folded away: the defaults suit most uses.
function optionInputs(schema) {
  const entries = Object.entries((schema && schema.properties) || {});
  if (!entries.length) return null;
  const inputs = entries.map(([key, spec]) => [key, spec, optionInput(spec)]);
  const node = h("details", { class: "options" },
    h("summary", {}, "Options (chosen once, at creation)"),
    inputs.map(([key, spec, input]) => {
      const about = spec.description ? h("span", { id: nextId("about"), class: "muted small" }, spec.description.replaceAll("`", "")) : null;
      if (about) input.setAttribute("aria-describedby", about.id);
      return h("div", { class: "option" }, h("label", { for: input.id }, key), input, about);
    }));
  const values = () => Object.fromEntries(inputs.map(([key, spec, input]) =>
    [key, spec.type === "integer" || spec.type === "number" ? Number(input.value) : input.value]));
  return { node, values };
}

function optionInput(spec) {
  const id = nextId("option");
  if (spec.enum) {
    return h("select", { id }, spec.enum.map((value) => h("option", { value, selected: value === spec.default }, value)));
  }
  if (spec.type === "integer" || spec.type === "number") {
    const step = spec.multipleOf || (spec.type === "integer" ? 1 : "any");
    return h("input", { id, type: "number", required: true, value: String(spec.default ?? ""), min: spec.minimum, max: spec.maximum, step });
  }
  return h("input", { id, value: spec.default ?? "" });
}

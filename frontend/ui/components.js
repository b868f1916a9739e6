// Shared building blocks of every page: elements, errors, busy and empty states, score
// meters, result cards, file drop zones, labelled fields and a confirmation step.

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
export const formatTime = (iso) => new Date(iso).toLocaleString("en");
export const quoted = (name) => `“${name}”`;

// A message from an API error (or any error), announced to screen readers.
export function errorBox(error) {
  const box = h("div", { class: "error", role: "alert" }, h("strong", {}, "Error: "), error.message);
  if (error.status) box.append(h("span", { class: "muted" }, ` (HTTP ${error.status}${error.requestId ? `, request ${error.requestId}` : ""})`));
  return box;
}

const latest = new WeakMap(); // area -> the ticket of its latest busy() call

// Runs a request while showing a busy state in `area`; errors end up in `area` too. Only the
// latest call for an area counts: one still running when another starts (a second click, a
// changed setting) gives way, its result dropped and its error not shown.
export async function busy(area, label, work) {
  const ticket = (latest.get(area) || 0) + 1;
  latest.set(area, ticket);
  const current = () => latest.get(area) === ticket;
  area.replaceChildren(h("p", { class: "muted loading", role: "status" }, label));
  area.setAttribute("aria-busy", "true");
  try {
    const result = await work();
    return current() ? result : undefined;
  } catch (error) {
    if (current()) area.replaceChildren(errorBox(error));
    return undefined;
  } finally {
    if (current()) area.removeAttribute("aria-busy");
  }
}

export function emptyState(text) {
  return h("p", { class: "empty", role: "status" }, text);
}

// Scores are cosine or Tanimoto similarities. At 0 or below an item is unrelated, so the meter
// runs from 0 to 1 and a negative score shows as an empty meter; the number stays exact.
export function scoreMeter(score, label = "score") {
  const filled = Math.min(1, Math.max(0, score));
  return h("span", { class: "score" },
    h("meter", { min: 0, max: 1, low: 0.3, high: 0.6, optimum: 1, value: filled, "aria-label": label }),
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

// A label and its control, kept together when a .row wraps: labelled("Results", input).
export function labelled(text, control) {
  control.id ||= nextId("field");
  return h("span", { class: "field" }, h("label", { for: control.id }, text), control);
}

// A number input; empty means "the server's default" when `placeholder` says so.
export function numberInput({ value = "", min, max, step = 1, placeholder }) {
  return h("input", { type: "number", value: String(value), min, max, step, placeholder });
}

// The number typed in `input`, or undefined when it is empty (so the request leaves it out).
export function numberOrNothing(input) {
  return input.value.trim() === "" ? undefined : Number(input.value);
}

// A second, explicit step before something that cannot be undone: the button gives way to
// the question with "Yes" and "No"; "No" (or Escape) brings the button back. `onConfirm`
// may throw: its error is shown next to the button.
export function confirmStep({ action, question, yes, onConfirm }) {
  const slot = h("span", { class: "confirm" });
  const button = h("button", { type: "button", class: "danger", onclick: () => ask() }, action);

  const reset = (...before) => {
    slot.replaceChildren(...before, button);
    button.focus();
  };

  function ask() {
    const questionId = nextId("confirm");
    const no = h("button", { type: "button", onclick: () => reset() }, "No");
    const sure = h("button", { type: "button", class: "danger", onclick: async () => {
      sure.disabled = no.disabled = true;
      try {
        await onConfirm();
      } catch (error) {
        reset(errorBox(error));
      }
    } }, yes);
    const step = h("span", { class: "confirm-step", role: "group", "aria-labelledby": questionId,
      onkeydown: (event) => { if (event.key === "Escape") reset(); } },
    h("span", { id: questionId, class: "confirm-question" }, question), sure, no);
    slot.replaceChildren(step);
    no.focus(); // the safe answer is the one Enter would press
  }

  slot.append(button);
  return slot;
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

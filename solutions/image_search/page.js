// Reverse image search: drop a picture, see the most similar ones; more like any result;
// near-duplicates (copies, crops, re-encodes) of a picture.
//
// The Find switch always says what the results are: a card's "More like this" and
// "Near-duplicates" set it, and changing it runs the current query again in the other mode.
// Served at ui/pages/<app>.js next to the shared modules, so imports are relative to there.

import { busy, dropZone, formatCount, formatTime, h, labelled, nextId, numberInput, numberOrNothing, resultCard, resultGrid } from "../components.js";

export const summary = "Drop a picture to find the most similar ones, or its near-duplicates: copies, crops and re-encodes.";

const dimensions = (image) => `${image.width}×${image.height}`;

export const data = {
  noun: "images",
  fileLabel: "Load images, or zips of images (folders become labels)",
  multiple: true,
  item: {
    card: (image, url) => ({
      image: url("thumbnail"),
      alt: image.filename,
      title: image.filename,
      subtitle: [image.label, dimensions(image)].filter(Boolean).join(" · "),
    }),
    detail: (image, url) => ({
      title: image.filename,
      picture: { src: url("original"), alt: image.filename },
      fields: [
        ["Label", image.label || "(none)"],
        ["Format", image.format],
        ["Size", `${dimensions(image)} px, ${formatCount(image.size_bytes)} bytes`],
        ["Id", image.id],
        ["Added", formatTime(image.created_at)],
      ],
    }),
  },
};

export function render(section, ctx) {
  const results = h("div", { class: "results", "aria-live": "polite" });
  const preview = h("div", { class: "preview" });
  const modeName = nextId("mode");
  const topK = numberInput({ value: 12, min: 1, max: 100 });
  const label = h("input", { type: "text", maxlength: 200, autocomplete: "off", placeholder: "any" });
  const threshold = numberInput({ min: 0, max: 1, step: 0.01, placeholder: "default" });
  const similarSettings = h("div", { class: "row settings" }, labelled("Results", topK), labelled("With label", label));
  const duplicateSettings = h("div", { class: "row settings" }, labelled("Near-duplicate threshold", threshold),
    h("span", { class: "muted small" }, "similarity 0 to 1; empty: the server's default"));
  const path = (rest) => `collections/${encodeURIComponent(ctx.collection)}/${rest}`;
  let query = null; // what the results are about: { file } dropped, or { hit } a stored image
  let objectUrl = null; // the dropped file's preview, released when the next one replaces it

  const mode = () => section.querySelector(`input[name="${modeName}"]:checked`).value;

  function setMode(value) {
    section.querySelector(`input[name="${modeName}"][value="${value}"]`).checked = true;
    similarSettings.hidden = value !== "similar";
    duplicateSettings.hidden = value !== "duplicates";
  }

  function show(title, found, note = "") {
    const cards = found.results.map((hit) => resultCard({
      image: hit.thumbnail_url,
      alt: hit.filename,
      title: hit.filename,
      subtitle: [hit.label, `${hit.width}×${hit.height}`].filter(Boolean).join(" · "),
      score: hit.score,
      scoreLabel: "similarity",
      actions: [
        h("button", { type: "button", onclick: () => ask({ hit }, "similar") }, "More like this"),
        h("button", { type: "button", onclick: () => ask({ hit }, "duplicates") }, "Near-duplicates"),
        h("a", { href: hit.original_url, target: "_blank", rel: "noopener" }, "Original"),
      ],
    }));
    results.replaceChildren(h("h3", {}, title), note ? h("p", { class: "muted small" }, note) : "", resultGrid(cards, "Nothing found."));
  }

  // The query picture; a file the browser cannot decode gets a note instead of a broken image.
  function showQuery(src, name) {
    const picture = h("img", { src, alt: `Query: ${name}` });
    picture.addEventListener("error", () => picture.replaceWith(
      h("span", { class: "muted small no-preview" }, "No preview: the browser cannot show this file as a picture.")), { once: true });
    preview.replaceChildren(picture, h("span", { class: "muted small" }, name));
  }

  async function similar({ file, hit }) {
    const wanted = label.value.trim() || undefined;
    const top = Number(topK.value) || 12;
    const only = wanted ? ` labelled “${wanted}”` : "";
    if (file) {
      const form = new FormData();
      form.append("file", file, file.name);
      form.append("top_k", String(top));
      if (wanted) form.append("label", wanted);
      const found = await busy(results, "Searching…", () => ctx.api.postForm(path("search"), form));
      if (found) show(`Most similar to ${file.name}${only}`, found);
    } else {
      const found = await busy(results, "Searching…", () => ctx.api.get(path(`items/${hit.id}/similar`), { top_k: top, label: wanted }));
      if (found) show(`More like ${hit.filename}${only}`, found);
    }
  }

  async function duplicates({ file, hit }) {
    const minScore = numberOrNothing(threshold);
    let found;
    if (file) {
      const form = new FormData();
      form.append("file", file, file.name);
      if (minScore !== undefined) form.append("min_score", String(minScore));
      found = await busy(results, "Searching…", () => ctx.api.postForm(path("duplicates"), form));
    } else {
      found = await busy(results, "Searching…", () => ctx.api.get(path(`items/${hit.id}/duplicates`), { min_score: minScore }));
    }
    if (found) {
      show(`Near-duplicates of ${file ? file.name : hit.filename}`, found,
        `${formatCount(found.results.length)} at or above similarity ${found.min_score}${found.truncated ? " (more exist)" : ""}.`);
    }
  }

  // Runs `next` (or the current query) in `wanted` mode (or the switch's).
  function ask(next, wanted) {
    if (wanted) setMode(wanted);
    if (next) query = next;
    if (!query) return undefined;
    if (next && next.hit) showQuery(next.hit.thumbnail_url, `${next.hit.filename} (stored)`);
    return mode() === "similar" ? similar(query) : duplicates(query);
  }

  function dropped(file) {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = URL.createObjectURL(file);
    showQuery(objectUrl, file.name);
    ask({ file });
  }

  const modes = h("fieldset", { class: "switch" }, h("legend", {}, "Find"),
    ...[["similar", "Similar images", true], ["duplicates", "Near-duplicates", false]].map(([value, text, checked]) => {
      const id = nextId("mode");
      return h("span", {}, h("input", { type: "radio", name: modeName, id, value, checked, onchange: () => ask(null, value) }), h("label", { for: id }, text));
    }));
  for (const input of [topK, label, threshold]) input.addEventListener("change", () => ask());

  section.replaceChildren(
    h("h2", { id: "search-heading" }, "Search by image"),
    h("div", { class: "row" }, modes),
    similarSettings, duplicateSettings,
    h("div", { class: "row" }, dropZone({ label: "Query image", onFile: dropped }), preview),
    results);
  setMode("similar");
}

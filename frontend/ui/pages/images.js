// Reverse image search: drop a picture, see the most similar ones; more like any result;
// near-duplicates (copies, crops, re-encodes) of a picture.

import { busy, dropZone, formatCount, h, nextId, resultCard, resultGrid } from "../components.js";

export const summary = "Drop a picture to find the most similar ones, or its near-duplicates: copies, crops and re-encodes.";
export const data = { noun: "images", fileLabel: "Load images, or zips of images (folders become labels)", field: "files", multiple: true };

export function render(section, ctx) {
  const results = h("div", { class: "results", "aria-live": "polite" });
  const preview = h("div", { class: "preview" });
  const modeName = nextId("mode");
  const mode = () => section.querySelector(`input[name="${modeName}"]:checked`).value;
  const path = (rest) => `collections/${encodeURIComponent(ctx.collection)}/${rest}`;

  function show(title, found, note = "") {
    const cards = found.results.map((hit) => resultCard({
      image: hit.thumbnail_url,
      alt: hit.filename,
      title: hit.filename,
      subtitle: [hit.label, `${hit.width}×${hit.height}`].filter(Boolean).join(" · "),
      score: hit.score,
      scoreLabel: "similarity",
      actions: [
        h("button", { type: "button", onclick: () => moreLike(hit) }, "More like this"),
        h("button", { type: "button", onclick: () => duplicatesOf(hit) }, "Near-duplicates"),
        h("a", { href: hit.original_url, target: "_blank", rel: "noopener" }, "Original"),
      ],
    }));
    results.replaceChildren(h("h3", {}, title), note ? h("p", { class: "muted small" }, note) : "", resultGrid(cards, "Nothing found."));
  }

  const showDuplicates = (title, found) => show(title, found,
    `${formatCount(found.results.length)} at or above similarity ${found.min_score}${found.truncated ? " (more exist)" : ""}.`);

  let shown = null; // the query's preview, released when the next one replaces it

  async function search(file) {
    if (shown) URL.revokeObjectURL(shown);
    shown = URL.createObjectURL(file);
    preview.replaceChildren(h("img", { src: shown, alt: `Query: ${file.name}` }), h("span", { class: "muted small" }, file.name));
    const form = new FormData();
    form.append("file", file, file.name);
    if (mode() === "similar") {
      form.append("top_k", "12");
      const found = await busy(results, "Searching…", () => ctx.api.postForm(path("search"), form));
      if (found) show(`Most similar to ${file.name}`, found);
    } else {
      const found = await busy(results, "Searching…", () => ctx.api.postForm(path("duplicates"), form));
      if (found) showDuplicates(`Near-duplicates of ${file.name}`, found);
    }
  }

  async function moreLike(hit) {
    const found = await busy(results, "Searching…", () => ctx.api.get(path(`items/${hit.id}/similar`), { top_k: 12 }));
    if (found) show(`More like ${hit.filename}`, found);
  }

  async function duplicatesOf(hit) {
    const found = await busy(results, "Searching…", () => ctx.api.get(path(`items/${hit.id}/duplicates`)));
    if (found) showDuplicates(`Near-duplicates of ${hit.filename}`, found);
  }

  const modes = h("fieldset", { class: "switch" }, h("legend", {}, "Find"),
    ...[["similar", "Similar images", true], ["duplicates", "Near-duplicates", false]].map(([value, label, checked]) => {
      const id = nextId("mode");
      return h("span", {}, h("input", { type: "radio", name: modeName, id, value, checked }), h("label", { for: id }, label));
    }));

  section.replaceChildren(
    h("h2", { id: "search-heading" }, "Search by image"),
    h("div", { class: "row" }, modes, dropZone({ label: "Query image", onFile: search }), preview),
    results);
}

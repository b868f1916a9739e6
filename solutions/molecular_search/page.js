// Molecular search: paste a SMILES, get the most similar molecules by Tanimoto similarity,
// or every molecule containing a substructure, drawn with the match highlighted.
// Served at ui/pages/<app>.js next to the shared modules, so imports are relative to there.

import { busy, formatCount, formatTime, h, nextId, resultCard, resultGrid } from "../components.js";

export const summary = "Paste a SMILES to find the most similar molecules (Tanimoto similarity of Morgan fingerprints), or switch to substructure to find every molecule containing a pattern.";

const nameOf = (molecule) => molecule.name || molecule.source_id || "(no name)";

export const data = {
  noun: "molecules",
  fileLabel: "Load a .smi, .csv (smiles, name, id) or .sdf file",
  item: {
    card: (molecule, url) => ({
      image: url("depiction"),
      alt: `Structure of ${nameOf(molecule)}`,
      title: nameOf(molecule),
      subtitle: molecule.smiles,
    }),
    detail: (molecule, url) => ({
      title: nameOf(molecule),
      picture: { src: url("depiction"), alt: `Structure of ${nameOf(molecule)}` },
      fields: [
        ["SMILES", molecule.smiles],
        ["Name", molecule.name || "(none)"],
        ["Source id", molecule.source_id || "(none)"],
        ["Id", molecule.id],
        ["Added", formatTime(molecule.created_at)],
      ],
    }),
  },
};

const EXAMPLES = [
  { label: "Aspirin", mode: "similarity", text: "CC(=O)Oc1ccccc1C(=O)O" },
  { label: "Caffeine", mode: "similarity", text: "Cn1c(=O)c2c(ncn2C)n(C)c1=O" },
  { label: "Ibuprofen", mode: "similarity", text: "CC(C)Cc1ccc(cc1)C(C)C(=O)O" },
  { label: "Sulfonamide (substructure)", mode: "substructure", text: "S(=O)(=O)N" },
  { label: "β-lactam ring (substructure)", mode: "substructure", text: "O=C1CCN1" },
];

export function render(section, ctx) {
  const inputId = nextId("smiles");
  const hintId = nextId("hint");
  const modeName = nextId("mode");
  const input = h("input", { id: inputId, type: "text", required: true, maxlength: 1000, autocomplete: "off", spellcheck: "false", "aria-describedby": hintId, placeholder: "CC(=O)Oc1ccccc1C(=O)O" });
  const hint = h("p", { id: hintId, class: "hint muted small", "aria-live": "polite" }, "A SMILES string; checked as you type.");
  const topK = h("input", { id: nextId("top"), type: "number", min: 1, max: 100, value: "12" });
  const results = h("div", { class: "results", "aria-live": "polite" });
  const mode = () => section.querySelector(`input[name="${modeName}"]:checked`).value;
  const path = (rest) => `collections/${encodeURIComponent(ctx.collection)}/${rest}`;
  let timer = 0;
  let checked = 0;

  async function validate() {
    const text = input.value.trim();
    const ticket = ++checked;
    if (!text || mode() !== "similarity") {
      input.removeAttribute("aria-invalid");
      hint.textContent = mode() === "similarity" ? "A SMILES string; checked as you type." : "SMARTS (or SMILES); matched atoms are highlighted.";
      hint.className = "hint muted small";
      return;
    }
    try {
      const result = await ctx.api.post("molecules/validate", { smiles: text });
      if (ticket !== checked) return; // a later keystroke is being checked
      input.setAttribute("aria-invalid", String(!result.valid));
      hint.className = `hint small ${result.valid ? "ok" : "invalid"}`;
      hint.textContent = result.valid ? `Valid: ${result.canonical_smiles}` : `Invalid SMILES: ${result.reason}`;
    } catch (error) {
      if (ticket === checked) hint.textContent = error.message;
    }
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(validate, 250);
  });

  function show(title, found, scored) {
    const cards = found.results.map((hit) => resultCard({
      image: hit.depiction_url,
      alt: `Structure of ${hit.name || hit.smiles}`,
      title: nameOf(hit),
      subtitle: hit.smiles,
      score: scored ? hit.similarity : undefined,
      scoreLabel: "similarity",
    }));
    results.replaceChildren(h("h3", {}, title), resultGrid(cards, "No molecule matches."));
  }

  async function search() {
    const text = input.value.trim();
    if (!text) return;
    if (mode() === "similarity") {
      const found = await busy(results, "Searching…", () => ctx.api.post(path("similar"), { smiles: text, top_k: Number(topK.value) || 12 }));
      if (found) show(`Most similar to ${text}`, found, true);
    } else {
      const found = await busy(results, "Searching…", () => ctx.api.post(path("substructure"), { query: text, syntax: "smarts", limit: Number(topK.value) || 12 }));
      if (found) show(`${formatCount(found.results.length)}${found.truncated ? "+" : ""} molecules contain ${text} (${formatCount(found.screened)} passed the fingerprint screen)`, found, false);
    }
  }

  const modes = h("fieldset", { class: "switch" }, h("legend", {}, "Search"),
    ...[["similarity", "Similarity", true], ["substructure", "Substructure", false]].map(([value, label, isChecked]) => {
      const id = nextId("mode");
      return h("span", {}, h("input", { type: "radio", name: modeName, id, value, checked: isChecked, onchange: validate }), h("label", { for: id }, label));
    }));

  const examples = h("p", { class: "examples" }, "Try: ", EXAMPLES.map((example) => h("button", {
    type: "button", class: "chip",
    onclick: () => {
      section.querySelector(`input[name="${modeName}"][value="${example.mode}"]`).checked = true;
      input.value = example.text;
      validate();
      search();
    },
  }, example.label)));

  const form = h("form", { onsubmit: (event) => { event.preventDefault(); search(); } },
    h("div", { class: "row" }, modes),
    h("div", { class: "row" },
      h("label", { for: inputId }, "Query"), input,
      h("label", { for: topK.id }, "Results"), topK,
      h("button", { type: "submit", class: "primary" }, "Search")),
    hint, examples);

  section.replaceChildren(h("h2", { id: "search-heading" }, "Search molecules"), form, results);
}

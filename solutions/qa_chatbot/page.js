// QA chatbot: ask in your own words, get the stored answer of the closest question.
// Served at ui/pages/<app>.js next to the shared modules, so imports are relative to there.

import { busy, emptyState, errorBox, formatScore, formatTime, h, labelled, nextId, numberInput, numberOrNothing, scoreMeter } from "../components.js";

export const summary = "Ask a question in your own words; the answer of the most similar stored question comes back with its confidence.";
export const data = {
  noun: "Q&A pairs",
  fileLabel: "Load a CSV (question, answer) or JSON Lines file",
  item: {
    card: (pair) => ({ title: pair.question }),
    detail: (pair) => ({
      title: pair.question,
      picture: null,
      fields: [["Answer", pair.answer], ["Id", pair.id], ["Added", formatTime(pair.created_at)]],
    }),
  },
};

const MODES = [["hybrid", "meaning and words"], ["dense", "meaning"], ["lexical", "words"]];

// Where a candidate came from: its rank by meaning and by words ("meaning #1 · words #3").
function origin(hit) {
  const parts = [];
  if (hit.dense_rank) parts.push(`meaning #${hit.dense_rank}`);
  if (hit.lexical_rank) parts.push(`words #${hit.lexical_rank}`);
  return parts.join(" · ");
}

// The shipped sample answers this one confidently (tests/test_frontend.py asks it).
const PLACEHOLDER = "how much memory does a float32 vector take?";

export function render(section, ctx) {
  const inputId = nextId("question");
  const transcript = h("ol", { class: "chat", "aria-live": "polite", "aria-label": "Conversation" });
  const input = h("input", { id: inputId, type: "text", required: true, maxlength: 1000, autocomplete: "off", placeholder: `e.g. ${PLACEHOLDER}` });
  const topK = numberInput({ value: 5, min: 1, max: 100 });
  const threshold = numberInput({ min: 0, max: 1, step: 0.01, placeholder: "default" });
  const mode = h("select", {}, MODES.map(([value, text]) => h("option", { value, selected: value === "hybrid" }, text)));

  async function ask(question) {
    transcript.append(h("li", { class: "bubble user" }, question));
    const reply = h("li", { class: "bubble bot" });
    transcript.append(reply);
    const body = { question, top_k: Number(topK.value) || 5, min_score: numberOrNothing(threshold), mode: mode.value };
    const result = await busy(reply, "Thinking…", () =>
      ctx.api.post(`collections/${encodeURIComponent(ctx.collection)}/ask`, body));
    if (!result) return;
    const below = result.score !== null && result.score < result.threshold;
    const verdict = result.answered
      ? [h("p", { class: "answer" }, result.answer), scoreMeter(result.score, "confidence"),
         h("p", { class: "muted small" }, `Matched: “${result.matched_question}”`, " · ", origin(result.similar[0]))]
      : [h("p", { class: "no-answer" }, result.message),
         below ? h("p", { class: "muted small" }, `Best match ${formatScore(result.score)}, below the threshold ${formatScore(result.threshold)}.`) : null];
    const similar = result.similar.length
      ? h("div", { class: "similar" }, h("h3", {}, "Similar questions"),
          h("ul", {}, result.similar.map((s) => h("li", {},
            h("button", { type: "button", class: "link", onclick: () => ask(s.question) }, s.question), " ",
            scoreMeter(s.score), " ", h("span", { class: "muted small origin" }, origin(s))))))
      : emptyState("No stored questions yet.");
    reply.replaceChildren(...verdict.filter(Boolean), similar);
    reply.scrollIntoView({ block: "nearest" });
  }

  const form = h("form", { onsubmit: (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    input.value = "";
    ask(question).catch((error) => transcript.append(h("li", {}, errorBox(error))));
  } },
  h("div", { class: "row" }, h("label", { for: inputId }, "Your question"), input, h("button", { type: "submit", class: "primary" }, "Ask")),
  h("div", { class: "row settings" },
    labelled("Search by", mode),
    labelled("Similar questions", topK),
    labelled("Confidence threshold", threshold),
    h("span", { class: "muted small" }, "0 to 1; empty: the server's default")));

  section.replaceChildren(h("h2", { id: "search-heading" }, "Ask"), transcript, form);
}

// QA chatbot: ask in your own words, get the stored answer of the closest question.

import { busy, emptyState, errorBox, formatScore, h, nextId, scoreMeter } from "../components.js";

export const summary = "Ask a question in your own words; the answer of the most similar stored question comes back with its confidence.";
export const data = { noun: "Q&A pairs", fileLabel: "Load a CSV (question, answer) or JSON Lines file" };

export function render(section, ctx) {
  const inputId = nextId("question");
  const transcript = h("ol", { class: "chat", "aria-live": "polite", "aria-label": "Conversation" });
  const input = h("input", { id: inputId, type: "text", required: true, maxlength: 1000, autocomplete: "off", placeholder: "e.g. how do I make searches more accurate?" });

  async function ask(question) {
    transcript.append(h("li", { class: "bubble user" }, question));
    const reply = h("li", { class: "bubble bot" });
    transcript.append(reply);
    const result = await busy(reply, "Thinking…", () =>
      ctx.api.post(`collections/${encodeURIComponent(ctx.collection)}/ask`, { question, top_k: 5 }));
    if (!result) return;
    const body = result.answered
      ? [h("p", { class: "answer" }, result.answer), scoreMeter(result.score, "confidence"),
         h("p", { class: "muted small" }, `Matched: “${result.matched_question}”`)]
      : [h("p", { class: "no-answer" }, result.message),
         result.score !== null ? h("p", { class: "muted small" }, `Best match ${formatScore(result.score)}, below the threshold ${formatScore(result.threshold)}.`) : null];
    const similar = result.similar.length
      ? h("div", { class: "similar" }, h("h3", {}, "Similar questions"),
          h("ul", {}, result.similar.map((s) => h("li", {},
            h("button", { type: "button", class: "link", onclick: () => ask(s.question) }, s.question), " ",
            scoreMeter(s.score)))))
      : emptyState("No stored questions yet.");
    reply.replaceChildren(...body.filter(Boolean), similar);
    reply.scrollIntoView({ block: "nearest" });
  }

  const form = h("form", { class: "row", onsubmit: (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    input.value = "";
    ask(question).catch((error) => transcript.append(h("li", {}, errorBox(error))));
  } }, h("label", { for: inputId }, "Your question"), input, h("button", { type: "submit", class: "primary" }, "Ask"));

  section.replaceChildren(h("h2", { id: "search-heading" }, "Ask"), transcript, form);
}

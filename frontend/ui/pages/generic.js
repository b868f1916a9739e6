// The page of an app that ships none of its own: its data (collections, loads, items) and a
// pointer to its API docs, where every search route can be tried.

import { h } from "../components.js";

export const summary = "This app ships no page of its own: manage its data here, and search it from its API docs.";

// An item's first text field as its title, its other fields listed.
const title = (item) => Object.entries(item).find(([key, value]) => key !== "id" && typeof value === "string")?.[1] || item.id;

export const data = {
  noun: "items",
  fileLabel: "Load files",
  item: {
    card: (item) => ({ title: title(item) }),
    detail: (item) => ({
      title: title(item),
      picture: null,
      fields: Object.entries(item).map(([key, value]) => [key, typeof value === "object" ? JSON.stringify(value) : String(value)]),
    }),
  },
};

export function render(section, ctx) {
  section.replaceChildren(
    h("h2", { id: "search-heading" }, "Search"),
    h("p", {}, "Try this app's search routes in its ",
      h("a", { href: ctx.link.docs }, "interactive API docs"), "."));
}

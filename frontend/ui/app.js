// The shell: one menu entry per app the server runs, one page at a time (#/qa, #/images...).
// Each app names its page module in GET /apps: the page it ships (served at
// ui/pages/<app>.js, next to the shared modules it imports) or the generic page.

import { client } from "./api.js";
import { errorBox, h } from "./components.js";
import { dataPanel } from "./data.js";

const pageModule = (link) => import(new URL(link.page, document.baseURI).href);

const main = document.getElementById("main");
const nav = document.getElementById("nav");

async function boot() {
  let links;
  try {
    links = await client("").get("apps");
  } catch (error) {
    main.replaceChildren(errorBox(error));
    return;
  }
  const apps = links;
  nav.replaceChildren(...apps.map((link) => h("li", {}, h("a", { href: `#/${link.name}`, "data-app": link.name }, link.title))));
  document.getElementById("docs-links").replaceChildren(
    ...apps.flatMap((link, i) => [i ? " · " : "", h("a", { href: link.docs }, `${link.title} API docs`)]));
  if (!apps.length) {
    main.replaceChildren(errorBox(new Error("This server runs no app.")));
    return;
  }
  const show = () => {
    const wanted = location.hash.replace(/^#\//, "");
    const link = apps.find((a) => a.name === wanted) || apps[0];
    showPage(link);
  };
  window.addEventListener("hashchange", show);
  show();
}

let shown = 0; // the latest navigation; an earlier one still loading its module gives way

async function showPage(link) {
  const ticket = ++shown;
  for (const a of nav.querySelectorAll("a")) {
    if (a.dataset.app === link.name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${link.title} · Search apps`;
  const page = await pageModule(link);
  if (ticket !== shown) return;
  const search = h("section", { class: "card", "aria-labelledby": "search-heading" });
  const ctx = {
    link,
    api: client(link.api),
    collection: link.collection,
    changed: () => page.render(search, ctx),
  };
  main.replaceChildren(
    h("h1", {}, link.title, " ", h("a", { class: "small", href: link.docs }, "API docs")),
    h("p", { class: "muted" }, page.summary),
    dataPanel(ctx, page.data),
    search);
  page.render(search, ctx);
  main.focus({ preventScroll: true });
}

boot();

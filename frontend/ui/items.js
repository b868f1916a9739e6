// A collection's items, a page at a time: a card each, a detail dialog for one, and delete
// behind a confirmation step. Folded until opened, so the search stays near the top of the
// page and nothing is read before someone wants to browse.
//
// How an item looks is the page's `data.item`: `card(item, url)` gives resultCard's fields,
// `detail(item, url)` gives { title, picture: { src, alt } or null, fields: [[name, value]] };
// `url(kind)` is where the item's media is (`thumbnail`, `original`, `depiction`).

import { busy, confirmStep, formatCount, h, nextId, quoted, resultCard, resultGrid } from "./components.js";

const PAGE_SIZE = 12;

export function itemsBrowser({ api, collection, noun, look, onDeleted }) {
  let offset = 0;
  let total = 0;
  let stale = true; // the collection changed while the browser was folded
  const range = h("span", { class: "range", role: "status" });
  const previous = h("button", { type: "button", onclick: () => go(offset - PAGE_SIZE) }, "Previous");
  const next = h("button", { type: "button", onclick: () => go(offset + PAGE_SIZE) }, "Next");
  const notice = h("p", { class: "notice small", role: "status" });
  const area = h("div", { class: "items" });
  const summary = h("summary", {}, `Browse the items of ${quoted(collection)}`);
  const node = h("details", { class: "items-browser" }, summary,
    h("div", { class: "row pager" }, previous, range, next),
    notice, area);
  node.addEventListener("toggle", () => {
    if (node.open && stale) go(offset);
  });

  const path = (rest) => `collections/${encodeURIComponent(collection)}/${rest}`;
  const mediaOf = (item) => (kind) => api.url(path(`items/${item.id}/${kind}`));
  const lastPage = () => (total ? Math.floor((total - 1) / PAGE_SIZE) * PAGE_SIZE : 0);

  async function go(to) {
    stale = false;
    offset = Math.max(0, Math.min(to, lastPage()));
    const items = await busy(area, "Reading items…", () => api.get(path("items"), { offset, limit: PAGE_SIZE }));
    if (!items) return;
    range.textContent = items.length
      ? `${formatCount(offset + 1)}–${formatCount(offset + items.length)} of ${formatCount(total)} ${noun}`
      : "";
    previous.disabled = offset === 0;
    next.disabled = offset + items.length >= total;
    area.replaceChildren(resultGrid(items.map(card), `No ${noun} in ${quoted(collection)} yet.`));
  }

  function card(item) {
    const shown = look.card(item, mediaOf(item));
    const open = h("button", { type: "button", "aria-label": `Open ${shown.title}`, onclick: () => openItem(item, open) }, "Open");
    return resultCard({ ...shown, actions: [open] });
  }

  function openItem(item, opener) {
    const { title, picture, fields } = look.detail(item, mediaOf(item));
    const titleId = nextId("item");
    const close = h("button", { type: "button", onclick: () => dialog.close() }, "Close");
    const remove = confirmStep({
      action: "Delete this item",
      question: `Delete ${quoted(title)} from ${quoted(collection)}?`,
      yes: "Yes, delete",
      onConfirm: async () => {
        await api.delete(path(`items/${item.id}`));
        dialog.close();
        notice.textContent = `Deleted ${quoted(title)}.`;
        await onDeleted();
      },
    });
    const dialog = h("dialog", { class: "item-dialog", "aria-labelledby": titleId },
      h("h2", { id: titleId }, title),
      picture ? h("img", { class: "item-picture", src: picture.src, alt: picture.alt }) : null,
      h("dl", { class: "fields" }, fields.map(([name, value]) => h("div", {}, h("dt", {}, name), h("dd", {}, value)))),
      h("div", { class: "row" }, remove, close));
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener.isConnected) opener.focus(); // back where the keyboard user was
      else summary.focus();
    });
    document.body.append(dialog);
    dialog.showModal();
  }

  // The collection now holds `count` items: read the page again if it is open (after a
  // delete on the last page, the page before), else when it is opened.
  function show(count) {
    total = count;
    summary.textContent = `Browse the ${formatCount(count)} ${noun} of ${quoted(collection)}`;
    stale = true;
    return node.open ? go(offset) : undefined;
  }

  return { node, show };
}

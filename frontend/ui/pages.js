// Every page of the front-end, by the name of the app it belongs to (its API namespace).
// Adding a page: one module in pages/ and one line here. The menu shows the pages whose
// app the server runs (GET /apps).

export const PAGES = {
  qa: () => import("./pages/qa.js"),
  images: () => import("./pages/images.js"),
  molecules: () => import("./pages/molecules.js"),
};

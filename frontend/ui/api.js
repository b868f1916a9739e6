// The API of one app, relative to the site root, with its error shape turned into messages.

export class ApiError extends Error {
  constructor(status, body, fallback) {
    const error = body && body.error;
    super(error ? error.message : fallback || `HTTP ${status}`);
    this.status = status;
    this.code = error ? error.code : "http_error";
    this.requestId = error ? error.request_id : null;
  }
}

export function client(prefix) {
  const base = new URL(prefix, document.baseURI);

  async function request(method, path, { json, form, query } = {}) {
    const url = new URL(path, base);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, value);
    }
    const init = { method, headers: { Accept: "application/json" } };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers["Content-Type"] = "application/json";
    } else if (form) {
      init.body = form;
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (error) {
      throw new ApiError(0, null, `Cannot reach the server (${error.message}).`);
    }
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!response.ok) throw new ApiError(response.status, body, `${response.status} ${response.statusText}`);
    return body;
  }

  return {
    url: (path) => new URL(path, base).href,
    get: (path, query) => request("GET", path, { query }),
    post: (path, json) => request("POST", path, { json }),
    postForm: (path, form) => request("POST", path, { form }),
    delete: (path) => request("DELETE", path),
    events: (path) => new EventSource(new URL(path, base)),
  };
}

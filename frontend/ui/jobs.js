// Load jobs on screen: one followed live through its event stream, and the history of a
// collection's loads. Both show the same line of counters and the same list of item errors.

import { busy, emptyState, errorBox, formatCount, formatTime, h, nextId, quoted } from "./components.js";

const HISTORY_LENGTH = 10;

// "sample: succeeded, 16 / 16 items (added 16, duplicates 0, failed 0)"; a video load adds
// ", 12 / 30 s of video".
export function jobLine(job) {
  const counts = `added ${formatCount(job.added)}, duplicates ${formatCount(job.duplicates)}, failed ${formatCount(job.failed)}`;
  const of = job.total ? ` / ${formatCount(job.total)}` : "";
  const progress = job.progress || {};
  const secondsOf = progress.seconds_total ? ` / ${formatCount(Math.round(progress.seconds_total))}` : "";
  const seconds = progress.seconds !== undefined ? `, ${formatCount(Math.round(progress.seconds))}${secondsOf} s of video` : "";
  return `${job.source}: ${job.status}, ${formatCount(job.done)}${of} items${seconds} (${counts})`;
}

// Why the job failed as a whole, and every item it could not load with the reason.
function outcome(job) {
  const parts = [];
  if (job.error) parts.push(h("div", { class: "error", role: "alert" }, job.error));
  if (job.errors && job.errors.length) {
    parts.push(h("details", { class: "item-errors", open: true },
      h("summary", {}, `${formatCount(job.failed)} item${job.failed === 1 ? "" : "s"} could not be loaded${job.errors_truncated ? " (first ones listed)" : ""}`),
      h("ul", {}, job.errors.map((e) => h("li", {}, h("code", {}, e.item), ": ", e.reason)))));
  }
  return parts;
}

// Follows a load job through its event stream: a progress bar, counters, a cancel button
// while it runs, then the outcome. The stream closes when the job ends or `signal` aborts
// (the page moved to another collection).
export function jobProgress(api, job, { onEnd, signal }) {
  const bar = h("progress", { max: 1, "aria-label": `Loading ${job.source}` });
  const status = h("p", { class: "job-status", role: "status", "aria-live": "polite" });
  const cancel = h("button", { type: "button", class: "small", onclick: async () => {
    cancel.disabled = true;
    try {
      await api.post(`jobs/${job.id}/cancel`);
    } catch (error) {
      panel.append(errorBox(error)); // e.g. 409: it had already finished
    }
  } }, "Cancel");
  const panel = h("div", { class: "job", "data-status": job.status }, bar, h("div", { class: "row" }, status, cancel));

  const show = (current) => {
    panel.dataset.status = current.status;
    const progress = current.progress || {};
    if (progress.seconds_total) { // finer than items: a single video moves the bar too
      bar.max = progress.seconds_total;
      bar.value = Math.min(progress.seconds || 0, progress.seconds_total);
    } else if (current.total) {
      bar.max = current.total;
      bar.value = current.done;
    }
    status.textContent = jobLine(current);
  };

  const end = (final) => {
    show(final);
    cancel.remove();
    if (!final.total) {
      bar.max = 1;
      bar.value = 1;
    }
    panel.append(...outcome(final));
    onEnd(final);
  };

  show(job);
  const source = api.events(`jobs/${job.id}/events`);
  signal.addEventListener("abort", () => source.close());
  source.addEventListener("progress", (event) => show(JSON.parse(event.data)));
  source.addEventListener("end", (event) => {
    source.close();
    end(JSON.parse(event.data));
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      panel.append(errorBox(new Error("Lost the job's progress stream; reload the page to see its state.")));
    }
  });
  return panel;
}

// One earlier job. The list leaves item errors out: a job with failed items is read again.
async function historyEntry(api, job) {
  const entry = h("li", { class: "history-entry", "data-status": job.status },
    h("p", { class: "job-status" }, jobLine(job), " ",
      h("time", { class: "muted small", datetime: job.created_at }, formatTime(job.created_at))));
  try {
    entry.append(...outcome(job.failed ? await api.get(`jobs/${job.id}`) : job));
  } catch (error) {
    entry.append(errorBox(error));
  }
  return entry;
}

// The latest loads into `collection`, newest first; `followed` holds the ids of jobs already
// on screen as live panels, left out here so no job is shown twice.
export function jobHistory(api, collection, followed) {
  const headingId = nextId("history");
  const list = h("div");
  const node = h("section", { class: "job-history", "aria-labelledby": headingId },
    h("h3", { id: headingId }, `Loads into ${quoted(collection)}`), list);

  async function refresh() {
    const jobs = await busy(list, "Reading the job history…", () => api.get("jobs", { collection, limit: HISTORY_LENGTH }));
    if (!jobs) return;
    const earlier = jobs.filter((job) => !followed.has(job.id));
    if (!earlier.length) {
      list.replaceChildren(emptyState(jobs.length ? "No earlier loads." : `No loads into ${quoted(collection)} yet.`));
      return;
    }
    const entries = await Promise.all(earlier.map((job) => historyEntry(api, job)));
    list.replaceChildren(h("ol", { class: "history" }, entries));
  }

  return { node, refresh };
}

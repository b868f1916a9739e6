// Video analysis: find the moment by a picture, by words or by person, or the videos that
// copy a clip's footage; each video found shows a timeline with its moments (or copied
// segments, or a person's appearances), and clicking one seeks the player to it. People are
// enrolled from a photo or by naming the faces of a video. The videos of the collection are
// listed below with their storyboards (shots), who is in them, and a search for copies.
// Served at ui/pages/<app>.js next to the shared modules, so imports are relative to there.

import { busy, dropZone, emptyState, formatCount, h, labelled, nextId, numberInput, numberOrNothing, scoreMeter } from "../components.js";

export const summary = "Find the moment in your videos by a picture, by words or by person, or where a clip's footage was copied from: each result is a stretch of a video, and a click plays it from there.";

export const data = {
  noun: "sampled frames",
  fileLabel: "Load videos (mp4, mov, webm, mkv, avi)",
  multiple: true,
};

// 75 -> "1:15"; 3725.5 -> "1:02:05"
export function clock(seconds) {
  const whole = Math.max(0, Math.floor(seconds));
  const [hours, minutes, secs] = [Math.floor(whole / 3600), Math.floor((whole % 3600) / 60), whole % 60];
  const two = (n) => String(n).padStart(2, "0");
  return hours ? `${hours}:${two(minutes)}:${two(secs)}` : `${minutes}:${two(secs)}`;
}

// Highlighted words: [{ text, match }] -> text with <mark> around the matches.
const marked = (spans) => (spans || []).map((s) => (s.match ? h("mark", {}, s.text) : s.text));

export function render(section, ctx) {
  const path = (rest) => `collections/${encodeURIComponent(ctx.collection)}/${rest}`;
  const player = h("video", { class: "player", controls: true, preload: "metadata", playsinline: true, hidden: true });
  const nowPlaying = h("p", { class: "muted small now-playing", role: "status" }, "Choose a moment or a shot to play it.");
  const results = h("div", { class: "results", "aria-live": "polite" });
  const library = h("div", { class: "library" });
  const preview = h("div", { class: "preview" });
  const words = h("input", { type: "search", maxlength: 500, placeholder: "e.g. espresso, cat, missile", autocomplete: "off" });
  const topK = numberInput({ value: 10, min: 1, max: 100 });
  const minScore = numberInput({ min: -1, max: 1, step: 0.01, placeholder: "default" });
  let objectUrl = null;
  let lastQuery = null;

  // Plays `video` (a Video of the API) from `seconds`: the same source seeks at once; a new
  // one seeks as soon as its metadata is known.
  function play(video, seconds, what) {
    const seek = () => { player.currentTime = seconds; };
    player.hidden = false;
    if (player.dataset.video !== video.id) {
      player.dataset.video = video.id;
      player.src = video.player_url;
      player.addEventListener("loadedmetadata", seek, { once: true });
    } else {
      seek();
    }
    nowPlaying.textContent = `${video.name} from ${clock(seconds)}${what ? ` (${what})` : ""}`;
    player.scrollIntoView({ block: "nearest" });
    player.play().catch(() => {}); // a browser may refuse to start sound unasked: seeking still works
  }

  // A lane as wide as the video, one marker per moment; a click on a marker plays it.
  function timeline(video, moments, label) {
    const lane = h("div", { class: "timeline", role: "group", "aria-label": `${label} in ${video.name}` });
    for (const moment of moments) {
      const left = (100 * moment.start) / video.duration;
      const width = Math.max(0.8, (100 * (moment.end - moment.start)) / video.duration);
      lane.append(h("button", {
        type: "button",
        class: "marker",
        style: `left: ${left}%; width: ${width}%`,
        title: `${clock(moment.start)}–${clock(moment.end)}`,
        "aria-label": `Play ${video.name} from ${clock(moment.start)}`,
        "data-start": String(moment.start),
        onclick: () => play(video, moment.start, `${clock(moment.start)}–${clock(moment.end)}`),
      }));
    }
    return lane;
  }

  function momentCard(video, moment, scoreLabel) {
    const labels = moment.tags && moment.tags.length ? h("span", { class: "small" }, marked(moment.tags)) : null;
    const text = moment.text && moment.text.length ? h("span", { class: "small" }, "“", marked(moment.text), "”") : null;
    const person = moment.names && moment.names.length ? h("span", { class: "small" }, "On screen: ", marked(moment.names)) : null;
    return h("li", {}, h("button", {
      type: "button",
      class: "moment",
      "data-start": String(moment.start),
      onclick: () => play(video, moment.start, `${clock(moment.start)}–${clock(moment.end)}`),
    },
    h("img", { src: moment.thumbnail_url, alt: `${video.name} at ${clock(moment.time)}`, loading: "lazy" }),
    h("span", { class: "moment-time" }, `${clock(moment.start)}–${clock(moment.end)}`),
    scoreLabel ? scoreMeter(moment.score, scoreLabel) : h("span", { class: "muted small" }, `relevance ${moment.score.toFixed(2)}`),
    labels, text, person));
  }

  function show(title, found, scoreLabel) {
    const videos = found.results.map((entry) => h("article", { class: "video-result" },
      h("h4", {}, entry.video.name, " ", h("span", { class: "muted small" }, `${clock(entry.video.duration)} · ${formatCount(entry.moments.length)} moment${entry.moments.length === 1 ? "" : "s"}`)),
      timeline(entry.video, entry.moments, "Moments"),
      h("ol", { class: "moments" }, entry.moments.map((m) => momentCard(entry.video, m, scoreLabel)))));
    results.replaceChildren(h("h3", {}, title), videos.length ? h("div", { class: "video-results" }, videos) : emptyState("No moment found."));
  }

  async function byPicture(file) {
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("top_k", String(Number(topK.value) || 10));
    const threshold = numberOrNothing(minScore);
    if (threshold !== undefined) form.append("min_score", String(threshold));
    const found = await busy(results, "Searching…", () => ctx.api.postForm(path("moments/by-image"), form));
    if (found) show(`Moments like ${file.name}`, found, "similarity");
  }

  async function byWords(query) {
    const found = await busy(results, "Searching…", () => ctx.api.get(path("moments/by-words"), { q: query, top_k: Number(topK.value) || 10 }));
    if (found) show(`Moments with “${query}”`, found, null);
  }

  // Copied footage: per video, a lane of the segments found in it; each a seek there.
  function showCopies(title, found) {
    const span = (a, b) => `${clock(a)}–${clock(b)}`;
    const videos = found.results.map((entry) => h("article", { class: "video-result" },
      h("h4", {}, entry.video.name, " ", h("span", { class: "muted small" }, `${clock(entry.video.duration)} · ${entry.seconds.toFixed(1)} s of the query`)),
      timeline(entry.video, entry.segments, "Copied footage"),
      h("ol", { class: "moments copies" }, entry.segments.map((segment) => h("li", {}, h("button", {
        type: "button", class: "moment", "data-start": String(segment.start),
        onclick: () => play(entry.video, segment.start, `copied ${span(segment.start, segment.end)}`),
      },
      h("span", { class: "moment-time" }, span(segment.start, segment.end)),
      h("span", { class: "small" }, `= query ${span(segment.query_start, segment.query_end)}`),
      scoreMeter(segment.score, "similarity")))))));
    results.replaceChildren(h("h3", {}, title), videos.length ? h("div", { class: "video-results" }, videos) : emptyState("No copied footage found."));
  }

  async function byClip(file) {
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("top_k", String(Number(topK.value) || 10));
    const found = await busy(results, `Reading ${file.name}…`, () => ctx.api.postForm(path("copies"), form));
    if (found) showCopies(`Videos with footage of ${file.name} (${clock(found.duration)})`, found);
  }

  async function copiesOf(video) {
    const found = await busy(results, "Comparing footage…", () => ctx.api.get(path(`videos/${video.id}/copies`), { top_k: Number(topK.value) || 10 }));
    if (found) showCopies(`Other videos with footage of ${video.name}`, found);
    results.scrollIntoView({ block: "nearest" });
  }

  // A person's appearances: per video, a lane of the spans they are on screen.
  function showAppearances(found) {
    const videos = found.results.map((entry) => h("article", { class: "video-result" },
      h("h4", {}, entry.video.name, " ", h("span", { class: "muted small" }, `${clock(entry.video.duration)} · on ${formatCount(entry.faces)} sampled frame${entry.faces === 1 ? "" : "s"}`)),
      timeline(entry.video, entry.spans, found.person.name),
      h("ol", { class: "moments appearances" }, entry.spans.map((span) => h("li", {}, h("button", {
        type: "button", class: "moment", "data-start": String(span.start),
        onclick: () => play(entry.video, span.start, `${found.person.name}, ${clock(span.start)}–${clock(span.end)}`),
      }, h("span", { class: "moment-time" }, `${clock(span.start)}–${clock(span.end)}`)))))));
    results.replaceChildren(h("h3", {}, `Where ${found.person.name} appears`), videos.length ? h("div", { class: "video-results" }, videos) : emptyState("Not seen in any video yet."));
  }

  async function byPerson(id) {
    const found = await busy(results, "Looking for their face…", () => ctx.api.get(path(`people/${id}/appearances`)));
    if (found) showAppearances(found);
  }

  async function listPeople(choose) {
    const listed = await busy(peopleList, "Reading people…", () => ctx.api.get(path("people")));
    if (!listed) return;
    peopleList.replaceChildren(listed.people.length
      ? h("ul", { class: "people" }, listed.people.map((person) => h("li", {}, h("button", {
        type: "button", class: "person", onclick: () => ask({ person: person.id }),
      }, h("img", { src: person.picture_url, alt: person.name }), h("span", {}, person.name), h("span", { class: "muted small" }, `${person.faces} face${person.faces === 1 ? "" : "s"}`)))))
      : emptyState("Nobody enrolled yet: enrol someone from a photo, or name a face under “Who is in it”."));
    if (choose) ask({ person: choose });
  }

  async function enrol(event) {
    event.preventDefault();
    const photo = enrolPhoto.files[0];
    if (!photo || !enrolName.value.trim()) return;
    const form = new FormData();
    form.append("name", enrolName.value.trim());
    form.append("file", photo, photo.name);
    const person = await busy(enrolStatus, `Reading the face in ${photo.name}…`, () => ctx.api.postForm(path("people"), form));
    if (!person) return;
    enrolStatus.replaceChildren(h("p", { class: "muted small", role: "status" }, `Enrolled ${person.name} (${person.faces} face${person.faces === 1 ? "" : "s"}).`));
    enrolForm.reset();
    listPeople(person.id);
  }

  // Who is in a video: a lane per known person, and each group of unknown faces with a
  // field to name it (which enrols that person).
  async function whoIsIn(video, slot) {
    const found = await busy(slot, "Reading faces…", () => ctx.api.get(path(`videos/${video.id}/people`)));
    if (!found) return;
    const known = found.known.map((entry) => h("div", { class: "person-lane" },
      h("span", { class: "small" }, entry.person.name),
      timeline(video, entry.spans, entry.person.name)));
    const unknown = found.unknown.map((cluster, index) => {
      const name = h("input", { type: "text", maxlength: 100, placeholder: "Their name", autocomplete: "off" });
      const status = h("span", { class: "small" });
      return h("form", { class: "row face-cluster", onsubmit: async (event) => {
        event.preventDefault();
        if (!name.value.trim()) return;
        const person = await busy(status, "Enrolling…", () => ctx.api.post(path("people/from-faces"), { name: name.value.trim(), faces: cluster.faces }));
        if (person) { listPeople(); whoIsIn(video, slot); }
      } },
      h("img", { src: cluster.picture_url, alt: `Unknown face ${index + 1} in ${video.name}`, class: "face" }),
      h("span", { class: "muted small" }, `${cluster.faces.length} frame${cluster.faces.length === 1 ? "" : "s"}, ${cluster.spans.map((s) => `${clock(s.start)}–${clock(s.end)}`).join(", ")}`),
      labelled("Name this face", name), h("button", { type: "submit" }, "Name"), status);
    });
    slot.replaceChildren(
      ...(known.length ? known : [emptyState("No enrolled person in this video.")]),
      ...(unknown.length ? [h("p", { class: "small" }, "Faces nobody enrolled:"), ...unknown] : []));
  }

  function ask(query) {
    if (query) lastQuery = query;
    if (!lastQuery) return undefined;
    if (lastQuery.person) return byPerson(lastQuery.person);
    if (lastQuery.clip) return byClip(lastQuery.clip);
    return lastQuery.file ? byPicture(lastQuery.file) : byWords(lastQuery.words);
  }

  function dropped(file) {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = URL.createObjectURL(file);
    preview.replaceChildren(h("img", { src: objectUrl, alt: `Query: ${file.name}` }), h("span", { class: "muted small" }, file.name));
    ask({ file });
  }

  async function storyboard(video, slot) {
    const board = await busy(slot, "Reading shots…", () => ctx.api.get(path(`videos/${video.id}`)));
    if (!board) return;
    const people = h("div", { class: "who" });
    slot.replaceChildren(
      h("div", { class: "row" },
        h("button", { type: "button", class: "secondary", onclick: () => copiesOf(video) }, "Find copies of this video"),
        h("button", { type: "button", class: "secondary", onclick: () => whoIsIn(video, people) }, "Who is in it")),
      people,
      timeline(video, board.shots, "Shots"),
      h("ol", { class: "moments storyboard" }, board.shots.map((shot) => h("li", {}, h("button", {
        type: "button", class: "moment", "data-start": String(shot.start),
        onclick: () => play(video, shot.start, `shot ${shot.shot + 1}`),
      },
      h("img", { src: shot.thumbnail_url, alt: `Shot ${shot.shot + 1} of ${video.name}`, loading: "lazy" }),
      h("span", { class: "moment-time" }, `${clock(shot.start)}–${clock(shot.end)}`),
      shot.tags ? h("span", { class: "small muted" }, shot.tags) : null,
      shot.text ? h("span", { class: "small shot-text" }, `“${shot.text}”`) : null)))));
  }

  async function listVideos() {
    const listed = await busy(library, "Reading videos…", () => ctx.api.get(path("videos"), { limit: 100 }));
    if (!listed) return;
    if (!listed.videos.length) {
      library.replaceChildren(emptyState("No videos yet: load the sample or your own above."));
      return;
    }
    library.replaceChildren(...listed.videos.map((video) => {
      const slot = h("div");
      const item = h("details", { class: "video-item" },
        h("summary", {}, video.name, " ", h("span", { class: "muted small" }, `${clock(video.duration)} · ${video.width}×${video.height} · ${video.codec}`)),
        slot);
      item.addEventListener("toggle", () => { if (item.open && !slot.childElementCount) storyboard(video, slot); });
      return item;
    }));
  }

  const modeName = nextId("by");
  const pictureRow = h("div", { class: "row" }, dropZone({ label: "Query picture", accept: "image/*", onFile: dropped }), preview);
  const clipRow = h("div", { class: "row" }, dropZone({ label: "Query clip (a video: where was its footage copied from?)", accept: "video/*", onFile: (clip) => ask({ clip }) }));
  const peopleList = h("div", { class: "people-list" });
  const enrolName = h("input", { type: "text", maxlength: 100, autocomplete: "off", placeholder: "e.g. Eileen Collins" });
  const enrolPhoto = h("input", { type: "file", accept: "image/*" });
  const enrolStatus = h("div");
  const enrolForm = h("form", { class: "row enrol", onsubmit: enrol },
    labelled("Person's name", enrolName), labelled("A photo of them alone", enrolPhoto),
    h("button", { type: "submit" }, "Enrol"), enrolStatus);
  const personRow = h("div", {}, peopleList, enrolForm);
  const wordsRow = h("form", { class: "row", onsubmit: (event) => {
    event.preventDefault();
    const query = words.value.trim();
    if (query) ask({ words: query });
  } }, labelled("Words to find", words), h("button", { type: "submit" }, "Search"));
  const modes = h("fieldset", { class: "switch" }, h("legend", {}, "Find by"),
    ...[["picture", "Picture", true], ["words", "Words", false], ["person", "Person", false], ["clip", "Copied clip", false]].map(([value, text, checked]) => {
      const id = nextId("by");
      return h("span", {}, h("input", { type: "radio", name: modeName, id, value, checked, onchange: () => {
        pictureRow.hidden = value !== "picture";
        wordsRow.hidden = value !== "words";
        clipRow.hidden = value !== "clip";
        personRow.hidden = value !== "person";
        if (value === "person") listPeople();
      } }), h("label", { for: id }, text));
    }));
  wordsRow.hidden = true;
  clipRow.hidden = true;
  personRow.hidden = true;
  for (const input of [topK, minScore]) input.addEventListener("change", () => ask());
  ctx.onRefresh = listVideos; // after every load or drop the data panel reports

  section.replaceChildren(
    h("h2", { id: "search-heading" }, "Find the moment"),
    h("div", { class: "row" }, modes),
    h("div", { class: "row settings" }, labelled("Videos", topK), labelled("Picture similarity at least", minScore)),
    pictureRow, wordsRow, personRow, clipRow,
    player, nowPlaying,
    results,
    h("h3", {}, "Videos and their shots"),
    library);
  listVideos();
}

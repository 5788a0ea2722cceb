// The vehicle-ocr console: plain DOM, no framework, no build step. Every value from a record is set
// as text (textContent, attributes), never parsed as HTML.
"use strict";

const API = "api";
const PERSONAL = ["owner", "address"];
// A listing shows what identifies the vehicle; the record's own page shows every field (owner and address too).
const LISTED_LICENCE_FIELDS = ["plate_number", "vehicle_type", "model", "vin", "register_date"];
const LICENCE_FIELDS = [
  "plate_number", "vehicle_type", "owner", "address", "use_character", "model", "vin", "engine_number",
  "register_date", "issue_date", "license_issuing_authority", "document_id", "approved_passengers",
  "total_mass_kg", "curb_weight_kg", "ratified_load_kg", "traction_mass_kg", "remarks", "inspection_record",
];

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function call(path, options) {
  const answer = await fetch(`${API}/${path}`, options);
  const body = await answer.json().catch(() => ({ error: `HTTP ${answer.status}` }));
  if (!answer.ok) throw new Error(body.error || `HTTP ${answer.status}`);
  return body;
}

function post(path, init) {
  return call(path, { method: "POST", ...init, headers: { "X-Console": "1", ...(init.headers || {}) } });
}

function say(text) {
  const message = document.getElementById("message");
  if (message) message.textContent = text || "";
}

// ------------------------------------------------------------------------------------------- photo
function photo(record, large) {
  const figure = el("figure", { class: large ? "photo large" : "photo" });
  const image = el("img", { src: `${API}/results/${record.id}/photo`, alt: record.source.key, loading: "lazy" });
  figure.append(image);
  image.addEventListener("error", () => image.replaceWith(el("p", { class: "no-photo" }, "no photo (not an image, or gone)")));
  const boxes = (record.plates || []).filter((plate) => Array.isArray(plate.box) && plate.box.length === 4);
  if (boxes.length) {
    image.addEventListener("load", () => {
      const svgNs = "http://www.w3.org/2000/svg";
      const svg = document.createElementNS(svgNs, "svg");
      svg.setAttribute("viewBox", `0 0 ${image.naturalWidth} ${image.naturalHeight}`);
      svg.setAttribute("preserveAspectRatio", "none");
      svg.setAttribute("class", "boxes");
      for (const plate of boxes) {
        const [x1, y1, x2, y2] = plate.box;
        const rect = document.createElementNS(svgNs, "rect");
        for (const [name, value] of Object.entries({ x: x1, y: y1, width: x2 - x1, height: y2 - y1 })) {
          rect.setAttribute(name, String(value));
        }
        rect.setAttribute("class", "plate-box");
        rect.setAttribute("data-plate", plate.number);
        const title = document.createElementNS(svgNs, "title");
        title.textContent = plate.number;
        rect.append(title);
        svg.append(rect);
      }
      figure.append(svg);
    });
  }
  return figure;
}

function plates(record) {
  if (!record.plates || !record.plates.length) return null;
  return el("ul", { class: "plates" }, record.plates.map((plate) =>
    el("li", {},
      el("span", { class: `plate-number color-${plate.color}` }, plate.number),
      ` ${plate.color} ${plate.kind}`,
      plate.confidence !== undefined && plate.confidence !== null ? ` · ${Math.round(plate.confidence * 100)}%` : "",
      plate.valid ? "" : " · not a valid format")));
}

function licence(record, everything) {
  const fields = record.vehicle_license;
  if (!fields) return null;
  const rows = (everything ? LICENCE_FIELDS : LISTED_LICENCE_FIELDS)
    .filter((name) => everything || !PERSONAL.includes(name))
    .filter((name) => fields[name] !== undefined && fields[name] !== null && fields[name] !== "")
    .map((name) => el("div", { class: `field field-${name}` }, el("dt", {}, name.replaceAll("_", " ")), el("dd", {}, fields[name])));
  return el("dl", { class: "licence" }, rows);
}

async function redrive(body, button, result, onRedriven) {
  // One upload ({id}) or every queued failure with one code ({code}): the console runs `vehicle-ocr redrive`.
  button.disabled = true;
  result.textContent = "re-running…";
  try {
    const report = await post("redrive", { headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const outcomes = Object.values(report.outcomes);
    result.textContent = outcomes.length
      ? `re-run: ${outcomes.join(", ")}` : `nothing re-run${report.kept.length ? `: ${report.kept.join("; ")}` : ""}`;
    if (onRedriven) await onRedriven();
    say(`${body.id ? "redrive" : `redrive of every ${body.code}`}: ${result.textContent}`);
  } catch (error) {
    result.textContent = `redrive failed: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

async function showFailures() {
  const section = document.getElementById("failures");
  try {
    const { codes } = await call("failures");
    section.hidden = !codes.length;
    document.querySelector("#failure-codes tbody").replaceChildren(...codes.map((group) => {
      const result = el("span", { class: "redrive-result" });
      const button = el("button", { type: "button", class: "redrive-group" }, `Redrive every ${group.code}`);
      button.addEventListener("click", () => redrive({ code: group.code }, button, result, refresh));
      return el("tr", { "data-code": group.code },
        el("td", {}, el("span", { class: "error-code" }, group.code)),
        el("td", { class: "count" }, group.count),
        el("td", {}, group.message || "", el("br"), el("span", { class: "what-to-do" }, group.what_to_do || "")),
        el("td", {}, button, " ", result));
    }));
  } catch (error) {
    section.hidden = true;
  }
}

function failure(record, onRedriven) {
  if (!record.error) return null;
  const result = el("p", { class: "redrive-result" });
  const one = el("button", { class: "redrive-one", type: "button" }, "Redrive this upload");
  one.addEventListener("click", () => redrive({ id: record.id }, one, result, onRedriven));
  const all = el("button", { class: "redrive-code", type: "button" }, `Redrive every ${record.error.code}`);
  all.addEventListener("click", () => redrive({ code: record.error.code }, all, result, onRedriven));
  return el("div", { class: "failure" },
    el("p", {}, el("span", { class: "error-code" }, record.error.code), ` ${record.error.message}`),
    el("p", { class: "what-to-do" }, record.what_to_do || ""),
    el("p", {}, one, " ", all), result);
}

function card(record) {
  return el("li", { class: `record status-${record.status}`, "data-id": record.id, "data-key": record.source.key },
    photo(record, false),
    el("div", { class: "about" },
      el("p", { class: "head" },
        el("a", { href: `#/record/${record.id}`, class: "open" }, record.source.key),
        el("span", { class: "status" }, record.status),
        el("span", { class: "kind" }, record.kind || ""),
        el("time", {}, record.created_at)),
      plates(record), licence(record, false), failure(record, refresh)));
}

// ---------------------------------------------------------------------------------------- results
let cursor = null;

function filters() {
  const query = new URLSearchParams();
  for (const name of ["kind", "status", "plate"]) {
    const value = document.getElementById(`filter-${name}`).value.trim();
    if (value) query.set(name, value);
  }
  return query;
}

async function refresh(append) {
  const query = filters();
  if (append && cursor) query.set("cursor", cursor);
  try {
    const page = await call(`results?${query}`);
    const list = document.getElementById("records");
    if (!append) list.replaceChildren();
    list.append(...page.items.map(card));
    cursor = page.cursor;
    document.getElementById("more").hidden = !cursor;
    say(list.children.length ? "" : "No records yet: drop a photo above.");
    if (!append) showFailures();
  } catch (error) {
    say(error.message);
  }
}

async function upload(files) {
  const kind = document.getElementById("upload-kind").value;
  for (const file of files) {
    const line = el("li", {}, `${file.name}: uploading…`);
    document.getElementById("pending").append(line);
    try {
      const form = new FormData();
      form.append("kind", kind);
      form.append("file", file);
      const placed = await post("upload", { body: form });
      line.textContent = `${placed.key}: waiting for the record…`;
      waitForRecord(placed.key, line, Date.now());
    } catch (error) {
      line.textContent = `${file.name}: ${error.message}`;
    }
  }
}

async function waitForRecord(key, line, startedAt) {
  const found = await call(`object?${new URLSearchParams({ key })}`).catch(() => ({ record: null }));
  if (found.record && Date.parse(found.record.created_at) >= startedAt - 2000) {
    line.remove();
    refresh(false);
    return;
  }
  if (Date.now() - startedAt > 300000) {
    line.textContent = `${key}: no record after 5 minutes`;
    return;
  }
  setTimeout(() => waitForRecord(key, line, startedAt), 700);
}

// ----------------------------------------------------------------------------------------- record
async function showRecord(id) {
  const page = document.getElementById("record-page");
  page.replaceChildren(el("p", {}, "loading…"));
  try {
    const record = await call(`results/${id}`);
    page.replaceChildren(
      el("p", {}, el("a", { href: "#/" }, "← all results")),
      el("h2", {}, record.source.key),
      el("p", { class: "head" }, el("span", { class: "status" }, record.status), ` ${record.kind || ""} · `,
        record.provider || "", ` · ${record.created_at}`, record.reused ? " · reused paid answer" : ""),
      photo(record, true), plates(record), licence(record, true),
      failure(record, () => showRecord(id)),
      record.fallback ? el("p", {}, `fell back from ${record.fallback.map((step) => `${step.provider} (${step.code})`).join(", ")}`) : null,
      el("p", { class: "source" }, `s3://${record.source.bucket}/${record.source.key}`,
        record.source.version_id ? ` version ${record.source.version_id}` : ""));
  } catch (error) {
    page.replaceChildren(el("p", {}, error.message));
  }
}

// ------------------------------------------------------------------------------------------- cost
function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

async function showCost() {
  const from = document.getElementById("cost-from");
  const to = document.getElementById("cost-to");
  if (!to.value) to.value = isoDay(new Date());
  if (!from.value) from.value = isoDay(new Date(Date.now() - 29 * 86400000));
  try {
    const usage = await call(`usage?${new URLSearchParams({ from: from.value, to: to.value })}`);
    const totals = usage.totals;
    document.getElementById("cost-summary").textContent =
      `${totals.calls} calls, ${totals.billed} billed, ${totals.possibly_billed} possibly billed, ` +
      `${totals.reused} reused, ${totals.fallbacks} fallbacks: ${totals.cost.toFixed(2)} ${usage.currency} ` +
      `(per call: ${Object.entries(usage.price_per_call).map(([name, price]) => `${name} ${price}`).join(", ")})`;
    chart(usage);
    const rows = usage.days.flatMap((day) => day.providers.map((entry) =>
      el("tr", { "data-day": day.day, "data-provider": entry.provider },
        el("td", {}, day.day), el("td", {}, entry.provider), el("td", { class: "calls" }, entry.calls),
        el("td", { class: "billed" }, entry.billed), el("td", {}, entry.possibly_billed),
        el("td", { class: "reused" }, entry.reused), el("td", { class: "fallbacks" }, entry.fallbacks),
        el("td", { class: "cost" }, `${entry.cost.toFixed(2)} ${usage.currency}`))));
    document.querySelector("#cost-table tbody").replaceChildren(...rows);
  } catch (error) {
    document.getElementById("cost-summary").textContent = error.message;
  }
}

function chart(usage) {
  // Per day, stacked: billed calls, calls not billed (the offline engine, refusals), reused answers; money on top.
  const svgNs = "http://www.w3.org/2000/svg";
  const width = 760, height = 200, bottom = 20, days = usage.days;
  const peak = Math.max(1, ...days.map((day) => day.calls + day.reused));
  const step = width / days.length;
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "chart");
  const bar = (x, y, h, cls, label) => {
    const rect = document.createElementNS(svgNs, "rect");
    for (const [name, value] of Object.entries({ x, y, width: Math.max(1, step - 2), height: h, class: cls })) {
      rect.setAttribute(name, String(value));
    }
    const title = document.createElementNS(svgNs, "title");
    title.textContent = label;
    rect.append(title);
    svg.append(rect);
  };
  days.forEach((day, index) => {
    const scale = (height - bottom - 14) / peak;
    const billed = day.billed * scale, unbilled = (day.calls - day.billed) * scale, reused = day.reused * scale;
    const x = index * step + 1, base = height - bottom;
    bar(x, base - billed, billed, "bar-billed", `${day.day}: ${day.billed} billed, ${day.cost} ${usage.currency}`);
    bar(x, base - billed - unbilled, unbilled, "bar-unbilled", `${day.day}: ${day.calls - day.billed} calls not billed`);
    bar(x, base - billed - unbilled - reused, reused, "bar-reused", `${day.day}: ${day.reused} reused`);
    if (day.cost > 0 || index === 0 || index === days.length - 1) {
      const text = document.createElementNS(svgNs, "text");
      text.setAttribute("x", String(x));
      text.setAttribute("y", String(day.cost > 0 ? base - billed - unbilled - reused - 3 : height - 5));
      text.textContent = day.cost > 0 ? day.cost.toFixed(2) : day.day.slice(5);
      svg.append(text);
    }
  });
  document.getElementById("cost-chart").replaceChildren(svg);
}

// ------------------------------------------------------------------------------------------ pages
function route() {
  const hash = location.hash || "#/";
  const record = hash.match(/^#\/record\/([0-9a-f]{32})$/);
  for (const id of ["results-page", "record-page", "cost-page"]) document.getElementById(id).hidden = true;
  if (record) {
    document.getElementById("record-page").hidden = false;
    showRecord(record[1]);
  } else if (hash === "#/cost") {
    document.getElementById("cost-page").hidden = false;
    showCost();
  } else {
    document.getElementById("results-page").hidden = false;
    refresh(false);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const zone = document.getElementById("upload");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    upload([...event.dataTransfer.files]);
  });
  const input = document.getElementById("upload-file");
  input.addEventListener("change", () => { upload([...input.files]); input.value = ""; });
  document.getElementById("filters").addEventListener("submit", (event) => { event.preventDefault(); refresh(false); });
  document.getElementById("more").addEventListener("click", () => refresh(true));
  document.getElementById("cost-range").addEventListener("submit", (event) => { event.preventDefault(); showCost(); });
  call("status").then((status) => { document.getElementById("where").textContent = status.where; }).catch(() => {});
  window.addEventListener("hashchange", route);
  route();
});

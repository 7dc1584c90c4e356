// The sr-tf page: sends an image to this server's public TF Serving REST API and shows the result.
// Calls: GET ui/models (names), GET v1/models/NAME (versions), GET v1/models/NAME/metadata
// (signatures), POST v1/models/NAME[/versions/V]:predict with the encoded_image signature (b64), or
// for a blend export (sr-tf export --blend / --denoise) encoded_image_blended with the slider's strength.
// Paths are relative, so the page also works behind a proxy that serves it under a prefix.
"use strict";

const $ = (id) => document.getElementById(id);
const API = "v1/models/";
const ENCODED_SIGNATURE = "encoded_image";
const BLEND_SIGNATURE = "encoded_image_blended";
const state = { inputURL: null, resultURL: null, input: null, result: null, file: null };
let strengthRanges = {}; // model name -> [low, high] of its strength input (from ui/models)

// ---------------------------------------------------------------- server calls, errors in plain words
function explain(status, message) {
  const said = message ? `: ${message}` : "";
  switch (status) {
    case 400: return `The server could not use this image${said}`;
    case 404: return `The server has no such model or version${said}`;
    case 413: return `The image is larger than this server accepts${said}`;
    case 429: return `The server is busy with other requests; try again in a moment${said}`;
    case 503: return `The server is not ready (or is shutting down)${said}`;
    case 504: return `The server took too long and gave up${said}`;
    default: return `The server failed (HTTP ${status})${said}`;
  }
}

async function call(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new Error(`Could not reach the server (${err.message}). Is sr-tf serve still running?`);
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(explain(response.status, body.error));
  return body;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("status").textContent = "";
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// ---------------------------------------------------------------- models and versions
async function loadModels() {
  try {
    const { models, strength } = await call("ui/models");
    strengthRanges = strength || {};
    const select = $("model");
    select.replaceChildren(...models.map((name) => new Option(name, name)));
    select.disabled = models.length === 0;
    if (models.length === 0) {
      showError("This server serves no models yet (see its log for the model base paths it watches).");
      return;
    }
    await loadVersions();
  } catch (err) {
    showError(err.message);
  }
}

async function loadVersions() {
  const name = $("model").value;
  const select = $("version");
  select.disabled = true;
  $("model-note").textContent = "";
  try {
    const status = await call(API + encodeURIComponent(name));
    const available = status.model_version_status
      .filter((v) => v.state === "AVAILABLE").map((v) => Number(v.version)).sort((a, b) => b - a);
    select.replaceChildren(
      new Option(available.length ? `newest (${available[0]})` : "none available", ""),
      ...available.map((v) => new Option(String(v), String(v))));
    select.disabled = available.length === 0;
    if (available.length === 0) {
      $("model-note").textContent = "no version of this model is available yet";
      return;
    }
    const meta = await call(API + encodeURIComponent(name) + "/metadata");
    const signatures = meta.metadata.signature_def.signature_def || {};
    noiseDefault = noiseDefaultOf(signatures[ENCODED_SIGNATURE]);
    setUpStrength(signatures[BLEND_SIGNATURE], strengthRanges[name]);
    if (!(ENCODED_SIGNATURE in signatures)) {
      $("model-note").textContent = `this model has no ${ENCODED_SIGNATURE} signature: export it with sr-tf export`;
    }
  } catch (err) {
    showError(err.message);
  }
}

// A model with a noise input (SRMD) has "noise_level" in its signature, with a default in the
// SignatureDef; TF Serving's REST API wants every input, so the page sends that default.
let noiseDefault = null;

function noiseDefaultOf(signature) {
  if (!signature || !("noise_level" in (signature.inputs || {}))) return null;
  const values = ((signature.defaults || {}).noise_level || {}).float_val || [];
  return values.length ? Number(values[0]) : 3;
}

// A blend export has encoded_image_blended with a scalar "strength" (its default in the SignatureDef,
// its range from ui/models): the slider sets it, and moving it upscales the last image again.
function setUpStrength(signature, range) {
  const blended = Boolean(signature && "strength" in (signature.inputs || {}));
  $("strength-box").hidden = !blended;
  $("signature-name").textContent = blended ? BLEND_SIGNATURE : ENCODED_SIGNATURE;
  if (!blended) return;
  const [low, high] = range || [0, 1];
  const values = ((signature.defaults || {}).strength || {}).float_val || [];
  const slider = $("strength");
  slider.min = String(low);
  slider.max = String(high);
  slider.step = "any"; // a fixed step would snap the SignatureDef's default (e.g. 1.5 on -1..3 by 0.2) away
  slider.value = String(values.length ? Number(values[0]) : (low + high) / 2);
  showStrength();
}

function showStrength() {
  $("strength-value").textContent = Number($("strength").value).toFixed(2);
}

function strength() {
  return $("strength-box").hidden ? null : Number($("strength").value);
}

function modelPath() {
  let path = API + encodeURIComponent($("model").value);
  if ($("version").value) path += "/versions/" + $("version").value;
  return path;
}

// ---------------------------------------------------------------- upscaling
function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(new Error(`Could not read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

function loadImage(url) {
  return new Promise((resolve) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => resolve(null); // a format the browser cannot show (the server may still read it)
    image.src = url;
  });
}

function base64ToBlob(b64, type) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type });
}

async function upscale(file) {
  if (!file) return;
  clearError();
  if ($("model").disabled) {
    showError("There is no model to send the image to.");
    return;
  }
  const model = $("model").value;
  $("status").textContent = `Upscaling ${file.name} with ${model}…`;
  let b64;
  try {
    b64 = await readBase64(file);
  } catch (err) {
    showError(err.message);
    return;
  }
  state.file = file;
  const knob = strength();
  let body;
  if (knob !== null) { // a scalar input: TF Serving's columnar format
    body = JSON.stringify({ signature_name: BLEND_SIGNATURE, inputs: { image_bytes: [{ b64 }], strength: knob } });
  } else {
    const instance = noiseDefault === null ? { b64 } : { image_bytes: { b64 }, noise_level: noiseDefault };
    body = JSON.stringify({ signature_name: ENCODED_SIGNATURE, instances: [instance] });
  }
  const started = performance.now();
  let answer;
  try {
    answer = await call(modelPath() + ":predict", {
      method: "POST", headers: { "Content-Type": "application/json" }, body,
    });
  } catch (err) {
    showError(err.message);
    return;
  }
  const seconds = (performance.now() - started) / 1000;
  const prediction = (answer.predictions || answer.outputs || [])[0];
  const out = prediction && (prediction.b64 || (prediction.upscaled_bytes && prediction.upscaled_bytes.b64));
  if (!out) {
    showError("The server answered without an image (is this model exported by sr-tf export?).");
    return;
  }
  for (const url of [state.inputURL, state.resultURL]) if (url) URL.revokeObjectURL(url);
  state.inputURL = URL.createObjectURL(file);
  state.resultURL = URL.createObjectURL(base64ToBlob(out, "image/png"));
  const [input, result] = await Promise.all([loadImage(state.inputURL), loadImage(state.resultURL)]);
  if (!result) {
    showError("The server's answer is not an image the browser can show.");
    return;
  }
  state.input = input;
  state.result = result;
  show(file, seconds, model);
}

function show(file, seconds, model) {
  const { input, result } = state;
  for (const id of ["result", "side-result"]) $(id).src = state.resultURL;
  for (const id of ["before", "side-input"]) $(id).src = input ? state.inputURL : "";
  const sizes = input
    ? `${input.naturalWidth}×${input.naturalHeight} → ${result.naturalWidth}×${result.naturalHeight}` +
      ` (×${(result.naturalWidth / input.naturalWidth).toFixed(2).replace(/\.?0+$/, "")})`
    : `→ ${result.naturalWidth}×${result.naturalHeight}`;
  $("sizes").textContent = `${file.name}: ${sizes}`;
  $("time").textContent = `${seconds.toFixed(2)} s`;
  $("time").title = "from sending the request to receiving the answer, as seen by this browser";
  const stem = file.name.replace(/\.[^.]+$/, "") || "image";
  $("download").href = state.resultURL;
  $("download").download = `${stem}_${model}.png`;
  const knob = strength();
  $("status").textContent = `Upscaled by ${model}${knob === null ? "" : ` at strength ${knob}`} in ${seconds.toFixed(2)} s.`;
  $("view").hidden = false;
  applyMode();
  applyZoom();
}

// ---------------------------------------------------------------- viewing: slider, side by side, zoom
function setSplit(percent) {
  const p = Math.min(100, Math.max(0, percent));
  $("split").value = String(p);
  $("before").style.clipPath = `inset(0 ${100 - p}% 0 0)`;
  $("divider").style.left = `${p}%`;
}

function applyMode() {
  const side = $("mode").value === "side";
  $("side-view").hidden = !side;
  $("slider-view").hidden = side;
  applyZoom(); // fit depends on the shown pane's width
}

function applyZoom() {
  if (!state.result) return;
  const zoom = $("zoom").value;
  const w = state.result.naturalWidth, h = state.result.naturalHeight;
  let scale = Number(zoom); // N screen pixels per result pixel
  if (zoom === "fit") { // the whole result in view, as large as the window allows
    const pane = $("slider-view").hidden ? $("side-view") : $("slider-view");
    const room = pane.clientWidth - 2 * parseFloat(getComputedStyle(pane).paddingLeft || "0");
    scale = Math.min(room / w, (0.62 * window.innerHeight) / h);
  }
  $("result").style.width = `${Math.max(1, Math.floor(w * scale))}px`;
  $("split").style.width = $("result").style.width; // the slider's thumb sits on the divider
  const pixelated = scale > 1.5; // show the model's pixels as squares rather than blurring them again
  $("stage").classList.toggle("zoomed", pixelated);
  for (const id of ["side-input", "side-result"]) {
    $(id).style.width = zoom === "fit" ? "100%" : `${w * scale}px`;
    $(id).classList.toggle("zoomed", pixelated);
  }
}

function syncScroll(a, b) {
  a.addEventListener("scroll", () => {
    b.scrollLeft = a.scrollLeft;
    b.scrollTop = a.scrollTop;
  });
}

// ---------------------------------------------------------------- wiring
function init() {
  $("model").addEventListener("change", loadVersions);
  $("strength").addEventListener("input", showStrength);
  $("strength").addEventListener("change", () => upscale(state.file));
  $("file").addEventListener("change", (e) => upscale(e.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    upscale(e.dataTransfer.files[0]);
  });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("file").click(); });
  $("split").addEventListener("input", (e) => setSplit(Number(e.target.value)));
  $("stage").addEventListener("pointermove", (e) => {
    if (e.buttons !== 1) return;
    const box = $("stage").getBoundingClientRect();
    setSplit(((e.clientX - box.left) / box.width) * 100);
  });
  $("mode").addEventListener("change", applyMode);
  $("zoom").addEventListener("change", applyZoom);
  window.addEventListener("resize", applyZoom);
  const [left, right] = document.querySelectorAll(".side .scroll");
  syncScroll(left, right);
  syncScroll(right, left);
  setSplit(50);
  loadModels();
}

init();

// The playground calls the same public API a client would: model_list, text2img, img2img or inpaint
// (ordinary or realtime), then the fetch_result each processing answer names.
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("key");
keyInput.value = localStorage.getItem("sdgate-key") || "";

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ key: keyInput.value, ...body }),
  });
  return response.json();
}

function setStatus(text) {
  $("status").textContent = text;
}

async function loadModels() {
  const models = await post("/api/v4/dreambooth/model_list", {});
  const select = $("model");
  select.innerHTML = "";
  if (!Array.isArray(models)) {
    setStatus(models.message || "Could not list models");
    return;
  }
  for (const model of models) {
    const option = new Option(`${model.model_id} (${model.status})`, model.model_id);
    option.disabled = model.status !== "model_ready";
    select.add(option);
  }
  const ready = models.find((m) => m.status === "model_ready");
  if (ready) select.value = ready.model_id;
}

function fillSchedulers() {
  const select = $("scheduler");
  for (const name of window.SDGATE_SCHEDULERS) select.add(new Option(name, name));
  select.value = "UniPCMultistepScheduler";
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function imageSource(link) {
  // In base64 mode each link is a .base64 text file holding the PNG.
  if (link.startsWith("data:")) return link;
  if (!link.endsWith(".base64")) return link;
  const text = await (await fetch(link)).text();
  return "data:image/png;base64," + text.trim();
}

async function showResult(answer) {
  const results = $("results");
  results.innerHTML = "";
  for (const link of answer.output) {
    const img = document.createElement("img");
    img.src = await imageSource(link);
    img.alt = "generated image";
    results.appendChild(img);
  }
  $("meta").textContent = JSON.stringify(answer.meta, null, 2);
  setStatus(`Done: job ${answer.id} in ${answer.generationTime}s, seed ${answer.meta.seed}`);
}

function fetchPath(answer) {
  // The fetch_result the server names, as a path on this page's origin (the server's public URL may differ).
  if (answer.fetch_result) return new URL(answer.fetch_result, location.href).pathname;
  return `/api/v6/images/fetch/${answer.id}`;
}

async function waitFor(answer) {
  // Poll fetch_result until the job leaves "processing", as the official SDKs do.
  while (answer.status === "processing") {
    setStatus(`Job ${answer.id} processing (eta ${answer.eta}s)…`);
    await new Promise((r) => setTimeout(r, 1000));
    answer = await post(fetchPath(answer), {});
  }
  return answer;
}

// --- the mask: uploaded, or drawn white on a black canvas the size of the init image ---

const canvas = $("mask-canvas");
const pen = canvas.getContext("2d");
let maskDrawn = false;
let lastPoint = null;

function clearMask() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  maskDrawn = false;
}

function showInitPreview(src) {
  const preview = $("init-preview");
  $("mask-hint").textContent = "Pick an init image first.";
  if (!src) {
    preview.removeAttribute("src");
    $("maskpad").hidden = true;
    $("mask-hint").hidden = false;
    return;
  }
  preview.src = src;
}

$("init-preview").addEventListener("load", () => {
  const preview = $("init-preview");
  if (canvas.width !== preview.naturalWidth || canvas.height !== preview.naturalHeight) {
    canvas.width = preview.naturalWidth;
    canvas.height = preview.naturalHeight;
    clearMask();
  }
  $("maskpad").hidden = false;
  $("mask-hint").hidden = true;
});
$("init-preview").addEventListener("error", () => {
  $("maskpad").hidden = true;
  $("mask-hint").hidden = false;
  $("mask-hint").textContent = "This page cannot show the init image: upload a mask instead.";
});

function canvasPoint(event) {
  // Pointer position in image pixels (the canvas is shown scaled).
  const rect = canvas.getBoundingClientRect();
  return [(event.clientX - rect.left) * canvas.width / rect.width,
          (event.clientY - rect.top) * canvas.height / rect.height];
}

function paint(event) {
  const point = canvasPoint(event);
  const from = lastPoint || point;
  pen.strokeStyle = "#fff";
  pen.lineWidth = Math.max(1, Number($("brush").value) || 1);
  pen.lineCap = pen.lineJoin = "round";
  pen.beginPath();
  pen.moveTo(from[0], from[1]);
  pen.lineTo(point[0], point[1]);
  pen.stroke();
  lastPoint = point;
  maskDrawn = true;
}

canvas.addEventListener("pointerdown", (event) => {
  canvas.setPointerCapture(event.pointerId);
  lastPoint = null;
  paint(event);
});
canvas.addEventListener("pointermove", (event) => {
  if (lastPoint) paint(event);
});
for (const name of ["pointerup", "pointercancel"]) canvas.addEventListener(name, () => { lastPoint = null; });

async function initImage() {
  const file = $("file").files[0];
  return file ? readFile(file) : $("url").value;
}

async function maskImage() {
  const file = $("mask-file").files[0];
  if (file) return readFile(file);
  if (!maskDrawn) throw new Error("draw the mask over the init image, or upload one");
  return canvas.toDataURL("image/png");
}

// Each mode names its path, the fields only it sends, and a hint; everything else is shared.
// The path is under /api/v6/images/ or, with Realtime checked, /api/v6/realtime/.
const MODES = {
  img2img: {
    path: "img2img",
    hint: "Pick a model and an init image.",
    async fields() {
      return { strength: $("strength").value, init_image: await initImage() };
    },
  },
  text2img: {
    path: "text2img",
    hint: "Pick a model, a prompt and a size.",
    async fields() {
      return { width: $("width").value, height: $("height").value };
    },
  },
  inpaint: {
    path: "inpaint",
    hint: "Pick a model and an init image, then draw or upload a mask.",
    async fields() {
      return { strength: $("strength").value, init_image: await initImage(), mask_image: await maskImage() };
    },
  },
};

function currentMode() {
  return document.querySelector("input[name=mode]:checked").value;
}

function isRealtime() {
  return $("realtime").checked;
}

function applyMode() {
  // Hide the inputs of other modes (and the model picker in realtime) and disable them, so their
  // constraints cannot block submitting.
  const mode = currentMode();
  const realtime = isRealtime() ? "on" : "off";
  for (const block of document.querySelectorAll("[data-modes], [data-realtime]")) {
    const modes = block.dataset.modes;
    block.hidden = (modes !== undefined && !modes.split(" ").includes(mode))
      || (block.dataset.realtime !== undefined && block.dataset.realtime !== realtime);
    for (const input of block.querySelectorAll("input, select")) input.disabled = block.hidden;
  }
  // Swap the hint, but leave a job's status or an error in place.
  const hints = Object.values(MODES).map((m) => m.hint);
  if (hints.includes($("status").textContent)) setStatus(MODES[mode].hint);
}

async function requestBody(mode, realtime) {
  const body = {
    prompt: $("prompt").value,
    num_inference_steps: $("steps").value,
    samples: $("samples").value,
    seed: $("seed").value === "" ? null : $("seed").value,
    ...(await mode.fields()),
  };
  // Realtime runs the server's own model and scheduler: none is sent.
  if (!realtime) Object.assign(body, { model_id: $("model").value, scheduler: $("scheduler").value });
  // Uploaded or drawn images travel as data URIs, which the server reads only in base64 mode.
  if ([body.init_image, body.mask_image].some((v) => typeof v === "string" && v.startsWith("data:"))) {
    body.base64 = "yes";
  }
  return body;
}

async function generate(event) {
  event.preventDefault();
  localStorage.setItem("sdgate-key", keyInput.value);
  const mode = MODES[currentMode()];
  const realtime = isRealtime();
  $("submit").disabled = true;
  setStatus("Submitting…");
  try {
    const body = await requestBody(mode, realtime);
    const endpoint = `/api/v6/${realtime ? "realtime" : "images"}/${mode.path}`;
    const answer = await waitFor(await post(endpoint, body));
    if (answer.status === "success") await showResult(answer);
    else setStatus(`Error: ${answer.message || answer.messege}`);
  } catch (error) {
    setStatus(`Error: ${error.message || error}`);
  } finally {
    $("submit").disabled = false;
  }
}

fillSchedulers();
applyMode();
for (const radio of document.querySelectorAll("input[name=mode]")) radio.addEventListener("change", applyMode);
$("realtime").addEventListener("change", applyMode);
$("file").addEventListener("change", async () => {
  const file = $("file").files[0];
  showInitPreview(file ? await readFile(file) : $("url").value);
});
$("url").addEventListener("change", () => {
  if (!$("file").files[0]) showInitPreview($("url").value);
});
$("clear-mask").addEventListener("click", clearMask);
keyInput.addEventListener("change", loadModels);
$("form").addEventListener("submit", generate);
loadModels();

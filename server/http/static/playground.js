// The playground calls the same public API a client would: model_list, img2img or text2img, fetch.
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

async function waitFor(answer) {
  // Poll fetch until the job leaves "processing", as the official SDKs do.
  while (answer.status === "processing") {
    setStatus(`Job ${answer.id} processing (eta ${answer.eta}s)…`);
    await new Promise((r) => setTimeout(r, 1000));
    answer = await post(`/api/v6/images/fetch/${answer.id}`, {});
  }
  return answer;
}

// Each mode names its endpoint, the fields only it sends, and a hint; everything else is shared.
const MODES = {
  img2img: {
    endpoint: "/api/v6/images/img2img",
    hint: "Pick a model and an init image.",
    async fields() {
      const fields = { strength: $("strength").value };
      const file = $("file").files[0];
      if (file) {
        fields.init_image = await readFile(file);
        fields.base64 = "yes";
      } else {
        fields.init_image = $("url").value;
      }
      return fields;
    },
  },
  text2img: {
    endpoint: "/api/v6/images/text2img",
    hint: "Pick a model, a prompt and a size.",
    async fields() {
      return { width: $("width").value, height: $("height").value };
    },
  },
};

function currentMode() {
  return document.querySelector("input[name=mode]:checked").value;
}

function applyMode() {
  // Hide the other mode's inputs and disable them, so their constraints cannot block submitting.
  const mode = currentMode();
  for (const block of document.querySelectorAll("[data-mode]")) {
    block.hidden = block.dataset.mode !== mode;
    for (const input of block.querySelectorAll("input")) input.disabled = block.hidden;
  }
  // Swap the hint, but leave a job's status or an error in place.
  const hints = Object.values(MODES).map((m) => m.hint);
  if (hints.includes($("status").textContent)) setStatus(MODES[mode].hint);
}

async function generate(event) {
  event.preventDefault();
  localStorage.setItem("sdgate-key", keyInput.value);
  const mode = MODES[currentMode()];
  const body = {
    model_id: $("model").value,
    prompt: $("prompt").value,
    num_inference_steps: $("steps").value,
    samples: $("samples").value,
    scheduler: $("scheduler").value,
    seed: $("seed").value === "" ? null : $("seed").value,
    ...(await mode.fields()),
  };
  $("submit").disabled = true;
  setStatus("Submitting…");
  try {
    const answer = await waitFor(await post(mode.endpoint, body));
    if (answer.status === "success") await showResult(answer);
    else setStatus(`Error: ${answer.message || answer.messege}`);
  } catch (error) {
    setStatus(`Error: ${error}`);
  } finally {
    $("submit").disabled = false;
  }
}

fillSchedulers();
applyMode();
for (const radio of document.querySelectorAll("input[name=mode]")) radio.addEventListener("change", applyMode);
keyInput.addEventListener("change", loadModels);
$("form").addEventListener("submit", generate);
loadModels();

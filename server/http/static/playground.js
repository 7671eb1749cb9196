// The playground calls the same public API a client would: model_list, img2img, fetch.
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

async function generate(event) {
  event.preventDefault();
  localStorage.setItem("sdgate-key", keyInput.value);
  const body = {
    model_id: $("model").value,
    prompt: $("prompt").value,
    strength: $("strength").value,
    num_inference_steps: $("steps").value,
    samples: $("samples").value,
    scheduler: $("scheduler").value,
    seed: $("seed").value === "" ? null : $("seed").value,
  };
  const file = $("file").files[0];
  if (file) {
    body.init_image = await readFile(file);
    body.base64 = "yes";
  } else {
    body.init_image = $("url").value;
  }
  $("submit").disabled = true;
  setStatus("Submitting…");
  try {
    const answer = await waitFor(await post("/api/v6/images/img2img", body));
    if (answer.status === "success") await showResult(answer);
    else setStatus(`Error: ${answer.message || answer.messege}`);
  } catch (error) {
    setStatus(`Error: ${error}`);
  } finally {
    $("submit").disabled = false;
  }
}

fillSchedulers();
keyInput.addEventListener("change", loadModels);
$("form").addEventListener("submit", generate);
loadModels();

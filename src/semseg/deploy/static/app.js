// The page of `semseg serve`: send an image to /predict, show the mask over it.
"use strict";

const drop = document.getElementById("drop");
const input = document.getElementById("file");
const status = document.getElementById("status");

function say(text, isError) {
  status.textContent = text;
  status.className = isError ? "error" : "";
}

async function describeModel() {
  const info = await (await fetch("/info")).json();
  document.getElementById("model").textContent =
    `${info.architecture}: ${info.classes.length} classes, ${info.inference}`;
}

function showLegend(classes) {
  const body = document.querySelector("#legend tbody");
  body.replaceChildren();
  for (const entry of [...classes].sort((a, b) => b.share - a.share)) {
    const row = body.insertRow();
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = `rgb(${entry.colour.join(",")})`;
    const name = row.insertCell();
    name.append(swatch, entry.name);
    row.insertCell().textContent = `${(100 * entry.share).toFixed(1)} %`;
  }
}

async function predict(file) {
  if (!file) return;
  say(`predicting ${file.name}...`);
  const form = new FormData();
  form.append("file", file);
  const response = await fetch("/predict?format=json&mask=1", { method: "POST", body: form });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({ detail: response.statusText }));
    say(`${response.status}: ${problem.detail}`, true);
    return;
  }
  const result = await response.json();
  const url = URL.createObjectURL(file);
  document.getElementById("photo").src = url;
  document.getElementById("under").src = url;
  document.getElementById("mask").src = `data:image/png;base64,${result.mask_png}`;
  showLegend(result.classes);
  document.getElementById("result").hidden = false;
  say(`${file.name}: ${result.width} x ${result.height} pixels`);
}

document.getElementById("opacity").addEventListener("input", (event) => {
  document.getElementById("mask").style.opacity = event.target.value / 100;
});
input.addEventListener("change", () => predict(input.files[0]));
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  predict(event.dataTransfer.files[0]);
});
document.getElementById("mask").style.opacity = 0.6;
describeModel().catch((error) => say(`cannot read /info: ${error}`, true));

// app.js: the page's script. It renders the items of GET /api/items and
// posts the form (a note and a file) to /api/upload with fetch and
// FormData, then shows the server's answer. With ?demo in the URL it
// fills the file input itself (a DataTransfer holding a made-up file)
// and submits the form, which is what the headless browser test does.
"use strict";

// Adler-32, as the server computes it (examples/web/server.lua).
function adler32(bytes) {
  let a = 1, b = 0;
  for (const byte of bytes) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

function hex8(n) {
  return n.toString(16).padStart(8, "0");
}

async function loadItems() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("/api/items");
    if (!response.ok) throw new Error("HTTP " + response.status);
    const { items } = await response.json();
    const list = document.getElementById("items");
    for (const item of items) {
      const li = document.createElement("li");
      li.dataset.id = item.id;
      const name = document.createElement("strong");
      name.textContent = item.name;           // text, never HTML
      li.append(name, ": " + item.note);
      list.append(li);
    }
    status.textContent = items.length + " items loaded";
  } catch (e) {
    status.textContent = "items failed: " + e.message;
  }
}

function showResult(answer) {
  const dl = document.getElementById("upload-result");
  dl.replaceChildren();
  for (const key of ["filename", "content_type", "size", "adler32", "note"]) {
    const dt = document.createElement("dt");
    dt.textContent = key;
    const dd = document.createElement("dd");
    dd.id = "result-" + key;
    dd.textContent = answer[key];
    dl.append(dt, dd);
  }
}

async function upload(form) {
  const status = document.getElementById("upload-status");
  const file = form.elements.file.files[0];
  status.textContent = "uploading " + file.name + "...";
  try {
    const mine = hex8(adler32(new Uint8Array(await file.arrayBuffer())));
    const response = await fetch(form.action, {
      method: "POST", body: new FormData(form) });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.status);
    showResult(answer);
    status.textContent = "uploaded; checksum " +
      (answer.adler32 === mine ? "matches" : "differs: " + mine);
  } catch (e) {
    status.textContent = "upload failed: " + e.message;
  }
}

// A made-up file: text lines and every byte value, CR, LF and "--" among
// them, which a multipart parser must carry through untouched.
function sampleFile() {
  const text = new TextEncoder().encode("lasync upload test\r\n".repeat(50));
  const bytes = new Uint8Array(256).map((_, i) => i);
  return new File([text, bytes], "sample.bin",
    { type: "application/octet-stream" });
}

const form = document.getElementById("upload");
form.addEventListener("submit", (event) => {
  event.preventDefault();
  upload(form);
});

loadItems().then(() => {
  if (new URLSearchParams(location.search).has("demo")) {
    const transfer = new DataTransfer();
    transfer.items.add(sampleFile());
    form.elements.file.files = transfer.files;
    form.elements.note.value = "sent by app.js";
    form.requestSubmit();
  }
});

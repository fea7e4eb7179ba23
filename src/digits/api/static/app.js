// The drawing page: Pointer Events on a canvas, debounced PNG uploads to /predict (so drawings take
// the same preprocessing path as photos), probability bars and the 28x28 the model saw. No libraries.
"use strict";
(() => {
  const pad = document.getElementById("pad");
  const context = pad.getContext("2d");
  const $ = (id) => document.getElementById(id);
  const STROKE = 20, DEBOUNCE_MS = 120;
  let drawing = false, last = null, inked = false, timer = null, sequence = 0, inFlight = null, names = [];

  function colours() {
    return $("ink").value === "dark" ? { paper: "#ffffff", ink: "#000000" } : { paper: "#000000", ink: "#ffffff" };
  }

  function clear() {
    context.fillStyle = colours().paper;
    context.fillRect(0, 0, pad.width, pad.height);
    inked = false;
    sequence += 1;  // answers to earlier drawings are stale now
    if (inFlight) inFlight.abort();
    showNothing("Draw a digit: the prediction updates as you draw.");
  }

  function point(event) {
    const box = pad.getBoundingClientRect();
    return { x: (event.clientX - box.left) * pad.width / box.width, y: (event.clientY - box.top) * pad.height / box.height };
  }

  function line(from, to) {
    context.strokeStyle = colours().ink;
    context.lineWidth = STROKE;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
    inked = true;
  }

  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    drawing = true;
    last = point(event);
    line(last, last);  // a dot
    schedule();
  });
  pad.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const each of events.length ? events : [event]) {
      const next = point(each);
      line(last, next);
      last = next;
    }
    schedule();
  });
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
    pad.addEventListener(type, () => {
      if (!drawing) return;
      drawing = false;
      schedule(0);
    });
  }

  function schedule(delay = DEBOUNCE_MS) {
    clearTimeout(timer);
    timer = setTimeout(sendCanvas, delay);
  }

  function sendCanvas() {
    if (!inked) return;
    pad.toBlob((blob) => send(blob, "image/png"), "image/png");
  }

  async function send(body, contentType) {
    const mine = ++sequence;
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    const options = { method: "POST", body, signal: inFlight.signal };
    if (contentType) options.headers = { "Content-Type": contentType };
    try {
      const response = await fetch(`/predict?include_input=true&mode=${$("mode").value}`, options);
      const answer = await response.json();
      if (mine !== sequence) return;  // a newer drawing has been sent since
      if (!response.ok) {
        showNothing(typeof answer.detail === "string" ? answer.detail : `error ${response.status}`);
        return;
      }
      show(answer.predictions[0]);
    } catch (error) {
      if (error.name !== "AbortError" && mine === sequence) showNothing(`request failed: ${error.message}`);
    }
  }

  function bars(probabilities, top) {
    const list = $("bars");
    list.replaceChildren();
    (probabilities || []).forEach((probability, index) => {
      const row = document.createElement("li");
      row.className = index === top ? "top" : "";
      row.dataset.label = names[index] ?? String(index);
      row.innerHTML = `<span class="label"></span><span class="track"><span class="fill"></span></span>` +
                      `<span class="value"></span>`;
      row.querySelector(".label").textContent = names[index] ?? String(index);
      row.querySelector(".fill").style.width = `${(probability * 100).toFixed(1)}%`;
      row.querySelector(".value").textContent = `${(probability * 100).toFixed(1)}%`;
      list.append(row);
    });
  }

  function seen(inputs) {
    const holder = $("seen");
    holder.replaceChildren();
    for (const input of inputs) {
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = 28;
      const pixels = canvas.getContext("2d").createImageData(28, 28);
      input.flat().forEach((value, index) => {
        pixels.data.set([value, value, value, 255], index * 4);
      });
      canvas.getContext("2d").putImageData(pixels, 0, 0);
      holder.append(canvas);
    }
  }

  function showNothing(message) {
    $("digit").textContent = "–";
    $("confidence").textContent = "no prediction yet";
    $("uncertain").hidden = true;
    bars([], -1);
    seen([]);
    $("status").textContent = message;
  }

  function show(result) {
    const percent = (value) => `${(value * 100).toFixed(1)}%`;
    if (result.kind === "no_ink") return showNothing("No digit found: draw bigger or darker.");
    if (result.kind === "not_a_digit") {
      showNothing("That does not look like a digit.");
      $("digit").textContent = "?";
      $("confidence").textContent = "not a digit";
      seen(result.digits.map((digit) => digit.input).filter(Boolean));
      return;
    }
    if (result.kind === "number") {
      $("digit").textContent = result.number;
      $("confidence").textContent = `confidence ${percent(result.confidence)} (` +
        result.digits.map((digit) => digit.not_a_digit ? "? not a digit" : `${digit.label} ${percent(digit.confidence)}`)
          .join(", ") + ")";
      const first = result.digits[0];
      bars(first.probabilities, first.digit);
      seen(result.digits.map((digit) => digit.input).filter(Boolean));
    } else {
      $("digit").textContent = result.label;
      $("confidence").textContent = `confidence ${percent(result.confidence)}`;
      bars(result.probabilities, result.digit);
      seen(result.digits.map((digit) => digit.input).filter(Boolean));
    }
    $("uncertain").hidden = !result.uncertain;
    const partly = result.kind === "number" && result.digits.some((digit) => digit.not_a_digit);
    $("status").textContent = partly ? "Some of that does not look like a digit (shown as ?)." :
      result.uncertain ? "Not sure: try drawing it again, bigger." : "Prediction updated.";
  }

  $("clear").addEventListener("click", clear);
  $("ink").addEventListener("change", clear);
  $("mode").addEventListener("change", sendCanvas);
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") clear(); });

  $("photo").addEventListener("change", () => {
    const file = $("photo").files[0];
    if (!file) return;
    const picture = new Image();
    picture.onload = () => {  // show the photo on the pad, fitted; the prediction uses the original file
      context.fillStyle = colours().paper;
      context.fillRect(0, 0, pad.width, pad.height);
      const scale = Math.min(pad.width / picture.width, pad.height / picture.height);
      const width = picture.width * scale, height = picture.height * scale;
      context.drawImage(picture, (pad.width - width) / 2, (pad.height - height) / 2, width, height);
      URL.revokeObjectURL(picture.src);
    };
    picture.onerror = () => {  // a format this browser cannot show (HEIC outside Safari): the server still reads it,
      context.fillStyle = colours().paper;  // and the pad no longer shows the drawing before it as if it were the photo
      context.fillRect(0, 0, pad.width, pad.height);
      URL.revokeObjectURL(picture.src);
    };
    picture.src = URL.createObjectURL(file);
    inked = false;  // the photo, not a drawing: further strokes start a new drawing after Clear
    const form = new FormData();
    form.append("file", file, file.name);
    $("status").textContent = `Reading ${file.name}…`;
    send(form, null);
    $("photo").value = "";
  });

  fetch("/info").then((response) => response.ok ? response.json() : null).then((info) => {
    if (!info) return;
    names = info.class_names;
    $("model").textContent = `model ${info.name} v${info.version} (${info.backend})` +
      (info.test_accuracy ? `, test accuracy ${(info.test_accuracy * 100).toFixed(2)}%` : "");
  }).catch(() => {});

  clear();
})();

// The static Space's page: decode a photo in the browser, resize it like PIL, run model.tflite with LiteRT.js,
// and show the overlay, the mask and the pixels per class (what the Gradio template shows).
//
// Orientation: pixels are used in their stored order and an EXIF Orientation tag is ignored, as in the training
// data (beam_seg/data/imaging.py; see orientation.js). Colours: embedded ICC profiles are ignored (PIL ignores them
// too); transparent areas are flattened on white, as stage 1 flattens them.

import { dropOrientation } from "./orientation.js";
import { resizeBilinear } from "./resize.js";
import { fetchModelFile, loadRuntime, ModelConfig, Segmenter } from "./runtime.js";
import {
  classPercentages,
  displaySize,
  paintMask,
  paintOverlay,
  upsampleClasses,
} from "./segmentation.js";

/** Largest photo the page decodes (PIL's own decompression-bomb limit is 89 million pixels). */
const MAX_PIXELS = 89_478_485;

/** How the browser decodes: raw colours, alpha not premultiplied (and no rotation, where the option is honoured). */
const DECODE_OPTIONS = { imageOrientation: "none", colorSpaceConversion: "none", premultiplyAlpha: "none" };

const config = JSON.parse(document.getElementById("space-config").textContent);
const $ = (id) => document.getElementById(id);

/** Timings for the page's own line and for bench/space.py-style measurements (milliseconds). */
const timings = { runtimeMs: null, modelMs: null, inferenceMs: [] };
window.__timings = timings;

// ---------------------------------------------------------------- status and errors

function setState(state, text) {
  document.body.dataset.state = state;
  $("status").textContent = text;
}

/** Shows one readable line (the first line of the message) in #error. */
function showError(error) {
  const message = String(error?.message ?? error).split("\n", 1)[0];
  $("error").textContent = message;
  $("error").hidden = false;
  console.error(error);
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// ---------------------------------------------------------------- the model, loaded once when the page opens

/** Whether a rendered value is still the template's placeholder (the page was not rendered by the publisher). */
const unrendered = (value) => typeof value !== "string" || value.startsWith("$");

async function loadSegmenter() {
  for (const key of ["hubUrl", "modelRepoId", "modelRevision"]) {
    if (unrendered(config[key])) {
      throw new Error(
        `This page is the unrendered template (${key} is ${JSON.stringify(config[key])}): ` +
          "publish it with python -m beam_seg.publish --space_sdk static",
      );
    }
  }
  const started = performance.now();
  const runtime = loadRuntime(config.litert).then((litert) => {
    timings.runtimeMs = performance.now() - started;
    return litert;
  });
  // The model's files download while the runtime loads.
  const modelConfig = fetchModelFile(config, "model_config.json")
    .then((r) => r.json())
    .then((json) => ModelConfig.parse(json));
  const modelBytes = fetchModelFile(config, "model.tflite")
    .then((r) => r.arrayBuffer())
    .then((b) => new Uint8Array(b));
  // All three settle before one error is reported, in this order, whichever failed first.
  const settled = await Promise.allSettled([modelConfig, modelBytes, runtime]);
  const failed = settled.find((result) => result.status === "rejected");
  if (failed) throw failed.reason;
  const [parsed, bytes, litert] = settled.map((result) => result.value);
  const segmenter = await Segmenter.create(litert, bytes, parsed);
  timings.modelMs = performance.now() - started;
  return segmenter;
}

function describeModel() {
  const link = $("model-link");
  if (unrendered(config.modelRepoId)) {
    link.textContent = "(not rendered)";
    return;
  }
  link.textContent = config.modelRepoId;
  link.href = config.modelRepoUrl;
  const version = unrendered(config.modelVersion) ? "" : ` version ${config.modelVersion}`;
  link.after(`${version} (commit ${config.modelRevision.slice(0, 7)}), run by LiteRT.js ${config.litert.version}.`);
}

// ---------------------------------------------------------------- one photo

/**
 * Decodes an image file into RGBA pixels at its stored size, flattened on white.
 *
 * @returns {Promise<{bitmap: ImageBitmap, pixels: Uint8ClampedArray, width: number, height: number}>}
 */
async function decodePhoto(blob, name) {
  const { bytes } = dropOrientation(new Uint8Array(await blob.arrayBuffer()));
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes], { type: blob.type }), DECODE_OPTIONS);
  } catch {
    throw new Error(`The file ${JSON.stringify(name)} is not an image this page can read (JPEG, PNG, WebP, GIF or BMP).`);
  }
  const { width, height } = bitmap;
  if (width * height > MAX_PIXELS) {
    bitmap.close();
    throw new Error(`The image ${JSON.stringify(name)} has too many pixels (${width}×${height}): pick a smaller picture.`);
  }
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, width, height);
  context.drawImage(bitmap, 0, 0);
  return { bitmap, pixels: context.getImageData(0, 0, width, height).data, width, height };
}

/** Draws the bitmap at display size on `canvas` (flattened on white) and returns its RGBA pixels. */
function drawPhoto(canvas, bitmap, width, height) {
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, width, height);
  context.imageSmoothingQuality = "high";
  context.drawImage(bitmap, 0, 0, width, height);
  return context.getImageData(0, 0, width, height).data;
}

function putPixels(canvas, pixels, width, height) {
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").putImageData(new ImageData(pixels, width, height), 0, 0);
}

function showPercentages(percentages, colours) {
  const list = $("percentages");
  list.replaceChildren();
  percentages.forEach(({ name, percent }, id) => {
    const [r, g, b] = colours[id];
    const term = document.createElement("dt");
    term.textContent = name;
    const value = document.createElement("dd");
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${percent.toFixed(1)}%`;
    fill.style.background = `rgb(${r}, ${g}, ${b})`;
    bar.append(fill);
    const number = document.createElement("span");
    number.className = "value";
    number.textContent = `${percent.toFixed(1)}%`;
    value.append(bar, number);
    list.append(term, value);
  });
}

function showLegend(modelConfig) {
  const legend = $("legend");
  legend.replaceChildren("Colours:");
  modelConfig.classes.forEach((name, id) => {
    const [r, g, b] = modelConfig.colours[id];
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = `rgb(${r}, ${g}, ${b})`;
    legend.append(" ", swatch, name);
  });
  const size = modelConfig.imageSize;
  legend.append(document.createElement("br"), `The model sees the photo resized to ${size}×${size}.`);
}

let latest = 0; // Only the last photo asked for is shown.

async function segmentFile(blob, name, segmenterPromise) {
  const request = ++latest;
  clearError();
  setState("busy", `Segmenting ${name}…`);
  try {
    const photo = await decodePhoto(blob, name);
    try {
      await showSegmentation(photo, name, await segmenterPromise, () => request === latest);
    } finally {
      photo.bitmap.close();
    }
  } catch (error) {
    if (request !== latest) return;
    showError(error);
    setState("error", "");
  }
}

/** Runs the model on a decoded photo and draws the results, unless `current()` says a newer photo was picked. */
async function showSegmentation(photo, name, segmenter, current) {
  if (!current()) return;
  const { imageSize: size, classes, colours } = segmenter.config;
  const started = performance.now();
  const input = resizeBilinear(photo.pixels, photo.width, photo.height, size, size, 4);
  const { mask, probabilities } = await segmenter.run(input);
  const inferenceMs = performance.now() - started; // Resize, model.run and copying its outputs.
  timings.inferenceMs.push(inferenceMs);
  if (!current()) return;

  const shown = displaySize(photo.width, photo.height);
  const display = drawPhoto($("photo"), photo.bitmap, shown.width, shown.height);
  $("photo").hidden = false;
  const classMap = upsampleClasses(probabilities, size, classes.length, shown.width, shown.height);
  const overlay = paintOverlay(display, classMap, shown.width, shown.height, colours, classes);
  putPixels($("overlay"), overlay, shown.width, shown.height);
  putPixels($("mask"), paintMask(classMap, colours), shown.width, shown.height);
  const percentages = classPercentages(mask, classes);
  showPercentages(percentages, colours);
  showLegend(segmenter.config);
  $("results").hidden = false;
  $("results").dataset.file = name;
  // For tests and debugging: the model's own input and output at S x S.
  window.__lastResult = {
    name,
    size,
    width: photo.width,
    height: photo.height,
    input: Array.from(input),
    mask: Array.from(mask),
    percentages,
  };
  setState("ready", `${name}: ${photo.width}×${photo.height}, resized to ${size}×${size}, segmented in ${Math.round(inferenceMs)} ms.`);
}

// ---------------------------------------------------------------- wiring

function main() {
  describeModel();
  const segmenterPromise = loadSegmenter();
  segmenterPromise.then(
    () => {
      if (document.body.dataset.state === "loading") {
        setState("ready", `Model loaded in ${(timings.modelMs / 1000).toFixed(1)} s: upload a photo or pick an example.`);
      }
    },
    (error) => {
      showError(error);
      setState("error", "");
    },
  );

  $("upload").addEventListener("change", (event) => {
    const file = event.target.files?.[0];
    event.target.value = ""; // Picking the same file again is a new request.
    if (file) segmentFile(file, file.name, segmenterPromise);
  });
  for (const button of document.querySelectorAll("#examples button")) {
    button.addEventListener("click", async () => {
      const src = button.dataset.src;
      const name = src.split("/").pop();
      try {
        const response = await fetch(src);
        if (!response.ok) throw new Error(`Could not load the example ${name}: HTTP ${response.status}`);
        await segmentFile(await response.blob(), name, segmenterPromise);
      } catch (error) {
        showError(error);
        setState("error", "");
      }
    });
  }
}

main();

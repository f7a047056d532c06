// The model in the browser: LiteRT.js (@litertjs/core, pinned in index.html) running model.tflite on the CPU
// (WebAssembly + XNNPACK), fetched from the model repo at the published commit.
//
// Every byte of the runtime is checked against the sha384 hashes pinned in index.html: the two ES modules by the
// import map's "integrity" entries, the Emscripten loader and the .wasm by `loadRuntime` below.

/** Class names, palette and input side of a model, read from its model_config.json. */
export class ModelConfig {
  constructor(imageSize, classes, colours) {
    this.imageSize = imageSize;
    this.classes = classes;
    this.colours = colours;
  }

  /** Checks the fields the page needs; throws one readable line naming the bad field. */
  static parse(json) {
    const size = json?.image_size;
    const classes = json?.classes;
    const palette = json?.palette;
    if (!Number.isInteger(size) || size < 1) throw new Error(`model_config.json: image_size ${JSON.stringify(size)} is not a positive integer`);
    if (!Array.isArray(classes) || classes.length === 0 || !classes.every((c) => typeof c === "string")) {
      throw new Error("model_config.json: classes must be a non-empty list of class names");
    }
    const colours = classes.map((name) => {
      const rgb = palette?.[name];
      if (!Array.isArray(rgb) || rgb.length !== 3 || !rgb.every((v) => Number.isInteger(v) && v >= 0 && v <= 255)) {
        throw new Error(`model_config.json: palette has no [r, g, b] colour for class ${JSON.stringify(name)}`);
      }
      return rgb;
    });
    return new ModelConfig(size, classes, colours);
  }
}

/** The text of a failed Hub answer: its JSON "error" field, else its first line (both kept short). */
async function hubErrorDetail(response) {
  let text = "";
  try {
    text = await response.text();
  } catch {
    return "";
  }
  try {
    const parsed = JSON.parse(text);
    if (typeof parsed?.error === "string") text = parsed.error;
  } catch {
    // Not JSON: keep the text.
  }
  const line = text.split("\n", 1)[0].trim();
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

/**
 * Reads one file of the model repo at the pinned revision.
 *
 * @param {{hubUrl: string, modelRepoId: string, modelRevision: string}} source Where the model lives.
 * @param {string} name The file's path in the repo.
 * @returns {Promise<Response>} The successful response.
 * @throws {Error} One line saying which file of which repo failed, and why.
 */
export async function fetchModelFile(source, name) {
  const { hubUrl, modelRepoId, modelRevision } = source;
  const url = `${hubUrl.replace(/\/+$/, "")}/${modelRepoId}/resolve/${encodeURIComponent(modelRevision)}/${name}`;
  const what = `${name} of ${modelRepoId} at revision ${modelRevision.slice(0, 12)}`;
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(`Could not download ${what} from ${hubUrl}: ${error.message} (network error or blocked by CORS)`);
  }
  if (response.ok) return response;
  const detail = await hubErrorDetail(response);
  const hint =
    response.status === 401 || response.status === 403
      ? " — a static Space reads the model without a token, so the model repo must be public"
      : "";
  throw new Error(`Could not download ${what}: HTTP ${response.status}${detail ? ` (${detail})` : ""}${hint}`);
}

/** Fetches `url` with Subresource Integrity; throws one line if it fails or the bytes do not match `integrity`. */
async function fetchVerified(url, integrity) {
  let response;
  try {
    response = await fetch(url, { integrity });
  } catch (error) {
    throw new Error(`Could not load the LiteRT.js runtime file ${url}: ${error.message} (unreachable, or not the pinned bytes)`);
  }
  if (!response.ok) throw new Error(`Could not load the LiteRT.js runtime file ${url}: HTTP ${response.status}`);
  return response;
}

/**
 * Loads LiteRT.js and its WebAssembly module, every file checked against `pins`.
 *
 * @param {{wasmDir: string, wasmFiles: Object<string, string>}} pins The runtime's wasm directory URL and the
 *     sha384 SRI hash of each file in it that may be loaded.
 * @returns {Promise<object>} The @litertjs/core module, loaded.
 */
export async function loadRuntime(pins) {
  let litert;
  try {
    litert = await import("@litertjs/core"); // Resolved and checked by the import map in index.html.
  } catch (error) {
    throw new Error(`Could not load the LiteRT.js runtime (@litertjs/core): ${error.message}`);
  }
  // LiteRT.js's own choice of build (litert/js/packages/core/src/load.ts): relaxed SIMD when the browser has it.
  const stem = (await litert.supportsFeature("relaxedSimd")) ? "litert_wasm_internal" : "litert_wasm_compat_internal";
  const [loader, wasm] = await Promise.all([
    fetchVerified(pins.wasmDir + stem + ".js", pins.wasmFiles[`${stem}.js`]).then((r) => r.blob()),
    fetchVerified(pins.wasmDir + stem + ".wasm", pins.wasmFiles[`${stem}.wasm`]).then((r) => r.arrayBuffer()),
  ]);
  // Hacks to make LiteRT.js run the verified bytes (it would fetch both files itself, without integrity):
  // 1. the Emscripten loader script is handed over as a blob: URL of the checked text; the "#<name>.js" fragment
  //    makes loadLiteRt take it as the file itself rather than a directory (blob: URLs ignore fragments);
  // 2. @litertjs/wasm-utils passes a global `Module` object to the Emscripten factory, whose documented
  //    `wasmBinary` option makes it instantiate the checked .wasm bytes instead of fetching its own.
  const loaderUrl = URL.createObjectURL(new Blob([loader], { type: "text/javascript" }));
  globalThis.Module = { wasmBinary: wasm };
  try {
    await litert.loadLiteRt(`${loaderUrl}#${stem}.js`);
  } catch (error) {
    throw new Error(`Could not start the LiteRT.js runtime: ${error.message ?? error}`);
  } finally {
    URL.revokeObjectURL(loaderUrl);
    delete globalThis.Module; // wasm-utils clears it on success; not on failure.
  }
  return litert;
}

/** A compiled model.tflite with the contract of beam_seg/train/litert.py. */
export class Segmenter {
  constructor(litert, model, config) {
    this.litert = litert;
    this.model = model;
    this.config = config;
  }

  /**
   * Compiles the LiteRT flatbuffer for the CPU (wasm) and checks its signature against `config`.
   *
   * @param {object} litert The loaded @litertjs/core module.
   * @param {Uint8Array} bytes The model.tflite file.
   * @param {ModelConfig} config The model's config.
   */
  static async create(litert, bytes, config) {
    let model;
    try {
      model = await litert.loadAndCompile(bytes, { accelerator: "wasm" });
    } catch (error) {
      throw new Error(`model.tflite could not be compiled by LiteRT.js: ${error.message ?? error}`);
    }
    const size = config.imageSize;
    const input = model.getInputDetails().find((d) => d.name === "image");
    const shape = input ? Array.from(input.shape).join("x") : "";
    if (!input || input.dtype !== "uint8" || shape !== `1x${size}x${size}x3`) {
      model.delete();
      throw new Error(`model.tflite does not take uint8 image [1, ${size}, ${size}, 3] (model_config.json's image_size)`);
    }
    return new Segmenter(litert, model, config);
  }

  /**
   * Segments one photo already resized to S x S.
   *
   * @param {Uint8Array} pixels S*S*3 RGB bytes.
   * @returns {Promise<{mask: Uint8Array, probabilities: Float32Array}>} S*S class ids and S*S*C probabilities.
   */
  async run(pixels) {
    const size = this.config.imageSize;
    const input = new this.litert.Tensor(pixels, [1, size, size, 3]);
    let outputs;
    try {
      outputs = await this.model.run("serving_default", { image: input });
      // Copies: the tensors' memory belongs to the runtime and is freed below.
      return {
        mask: Uint8Array.from(outputs.mask.toTypedArray()),
        probabilities: Float32Array.from(outputs.probabilities.toTypedArray()),
      };
    } finally {
      input.delete();
      for (const tensor of Object.values(outputs ?? {})) tensor.delete();
    }
  }
}

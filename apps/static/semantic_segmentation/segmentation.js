// What the page shows for one prediction, as pure functions over typed arrays (no DOM): the percentages per
// class, the class map at display size, the coloured mask and the overlay.

/** Longest side of the pictures the page draws (larger photos are shown scaled down, as in the Gradio app). */
export const MAX_DISPLAY_SIDE = 1024;

/**
 * Opacity of each class's colour over the photo (others: DEFAULT_ALPHA): the same look as the Gradio app and
 * beam_seg.drawing. The thin border band is nearly opaque so it stands out in the legend's colour; the background
 * is only tinted, so the photo stays readable.
 */
export const CLASS_ALPHA = { background: 0.25, border: 0.85 };
export const DEFAULT_ALPHA = 0.5;
/** The class outlined, opaque, in its own colour on its region's inner edge, and the outline's width in pixels. */
export const OUTLINE_CLASS = "pet";
export const OUTLINE_WIDTH = 2;

/** The display size of a width x height photo: scaled down so that its longest side is at most `maxSide`. */
export function displaySize(width, height, maxSide = MAX_DISPLAY_SIDE) {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * Percent of the model's mask pixels in each class, in class order (ids beyond the classes are not counted).
 *
 * @param {Uint8Array} mask Class ids, S*S.
 * @param {string[]} classes Class names, by id.
 * @returns {{name: string, percent: number}[]}
 */
export function classPercentages(mask, classes) {
  const counts = new Array(classes.length).fill(0);
  for (const id of mask) if (id < classes.length) counts[id] += 1;
  const total = Math.max(1, mask.length);
  return classes.map((name, id) => ({ name, percent: (100 * counts[id]) / total }));
}

/**
 * The class of every display pixel: the model's probabilities (S x S x C) upsampled bilinearly, then the most
 * likely class. Class ids are never interpolated; the boundaries come out smooth instead of S-pixel steps.
 *
 * @returns {Uint8Array} width*height class ids.
 */
export function upsampleClasses(probabilities, size, numClasses, width, height) {
  const out = new Uint8Array(width * height);
  const scaleX = size / width;
  const scaleY = size / height;
  const best = new Float32Array(numClasses);
  for (let y = 0; y < height; y++) {
    // Pixel centres, clamped to the first and last source pixel centres.
    const sy = Math.min(Math.max((y + 0.5) * scaleY - 0.5, 0), size - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, size - 1);
    const fy = sy - y0;
    for (let x = 0; x < width; x++) {
      const sx = Math.min(Math.max((x + 0.5) * scaleX - 0.5, 0), size - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, size - 1);
      const fx = sx - x0;
      const p00 = (y0 * size + x0) * numClasses;
      const p01 = (y0 * size + x1) * numClasses;
      const p10 = (y1 * size + x0) * numClasses;
      const p11 = (y1 * size + x1) * numClasses;
      let arg = 0;
      for (let c = 0; c < numClasses; c++) {
        const top = probabilities[p00 + c] * (1 - fx) + probabilities[p01 + c] * fx;
        const bottom = probabilities[p10 + c] * (1 - fx) + probabilities[p11 + c] * fx;
        best[c] = top * (1 - fy) + bottom * fy;
        if (best[c] > best[arg]) arg = c;
      }
      out[y * width + x] = arg;
    }
  }
  return out;
}

/**
 * RGBA pixels of the mask in the palette (ids beyond the palette take its last colour).
 *
 * @param {Uint8Array} classMap Class ids.
 * @param {number[][]} colours [r, g, b] by class id.
 * @returns {Uint8ClampedArray}
 */
export function paintMask(classMap, colours) {
  const out = new Uint8ClampedArray(classMap.length * 4);
  for (let i = 0; i < classMap.length; i++) {
    const [r, g, b] = colours[Math.min(classMap[i], colours.length - 1)];
    out[4 * i] = r;
    out[4 * i + 1] = g;
    out[4 * i + 2] = b;
    out[4 * i + 3] = 255;
  }
  return out;
}

/**
 * x rounded to the nearest integer, ties to the even one: numpy's rint (Math.round sends ties up), so that the
 * page's overlay is the Python one to the last level.
 */
function roundHalfEven(x) {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The blended value of every channel value, per class and channel: `round((1 - alpha) * value + alpha * colour)`
 * in float64 and in the order beam_seg.drawing computes it, so both round the same sums.
 *
 * @param {number[][]} colours [r, g, b] by class id.
 * @param {number[]} alphas Opacity by class id.
 * @returns {Uint8Array} (class * 3 + channel) * 256 + value -> blended value.
 */
function blendTables(colours, alphas) {
  const tables = new Uint8Array(colours.length * 3 * 256);
  for (let id = 0; id < colours.length; id++) {
    const a = alphas[id] ?? DEFAULT_ALPHA;
    for (let channel = 0; channel < 3; channel++) {
      const tinted = a * colours[id][channel];
      const table = (id * 3 + channel) * 256;
      for (let value = 0; value < 256; value++) tables[table + value] = roundHalfEven((1 - a) * value + tinted);
    }
  }
  return tables;
}

/**
 * The pixels of a region within `steps` pixels (4-neighbour steps) of its outside: the region eroded `steps`
 * times, taken away from it. The picture's frame is not outside (a neighbour beyond it is the pixel itself), so
 * a pet cut by the frame is not outlined along it.
 *
 * @param {Uint8Array} region 1 inside the region, 0 outside, width*height.
 * @returns {Uint8Array} 1 on the inner edge, width*height.
 */
export function innerEdge(region, width, height, steps) {
  let inner = region;
  for (let step = 0; step < steps; step++) {
    const eroded = new Uint8Array(inner.length);
    for (let y = 0; y < height; y++) {
      const row = y * width;
      const up = Math.max(y - 1, 0) * width;
      const down = Math.min(y + 1, height - 1) * width;
      for (let x = 0; x < width; x++) {
        const left = Math.max(x - 1, 0);
        const right = Math.min(x + 1, width - 1);
        eroded[row + x] = inner[row + x] & inner[up + x] & inner[down + x] & inner[row + left] & inner[row + right];
      }
    }
    inner = eroded;
  }
  return region.map((inside, i) => inside & (inner[i] ^ 1));
}

/**
 * The classes drawn over the photo so their colours stay the legend's, the same look as the Gradio app and
 * beam_seg.drawing's `overlay`, pixel for pixel: each class's colour blended in with its opacity from
 * `overlayAlphas`, `round((1 - alpha) * pixel + alpha * colour)` (ties to even, as numpy), looked up in a table
 * of every pixel value per class and channel; the OUTLINE_CLASS region also gets an opaque outline OUTLINE_WIDTH
 * pixels wide in its colour.
 *
 * @param {Uint8ClampedArray} photo RGBA photo pixels at display size (its alpha is not used).
 * @param {Uint8Array} classMap Class ids at display size (ids beyond the palette take its last colour).
 * @param {number} width Display width (classMap is width*height).
 * @param {number} height Display height.
 * @param {number[][]} colours [r, g, b] by class id.
 * @param {string[]} classes Class names, by id.
 * @returns {Uint8ClampedArray} Opaque RGBA pixels.
 */
export function paintOverlay(photo, classMap, width, height, colours, classes) {
  const tables = blendTables(colours, overlayAlphas(classes));
  const out = new Uint8ClampedArray(classMap.length * 4);
  const ids = classMap.map((id) => Math.min(id, colours.length - 1));
  for (let i = 0; i < ids.length; i++) {
    const table = ids[i] * 3 * 256;
    out[4 * i] = tables[table + photo[4 * i]];
    out[4 * i + 1] = tables[table + 256 + photo[4 * i + 1]];
    out[4 * i + 2] = tables[table + 512 + photo[4 * i + 2]];
    out[4 * i + 3] = 255;
  }
  const outlined = classes.indexOf(OUTLINE_CLASS);
  if (outlined >= 0 && outlined < colours.length) {
    const region = ids.map((id) => (id === outlined ? 1 : 0));
    const edge = innerEdge(region, width, height, OUTLINE_WIDTH);
    const [r, g, b] = colours[outlined];
    for (let i = 0; i < edge.length; i++) {
      if (!edge[i]) continue;
      out[4 * i] = r;
      out[4 * i + 1] = g;
      out[4 * i + 2] = b;
    }
  }
  return out;
}

/** The overlay opacity of each class, by class id (CLASS_ALPHA, DEFAULT_ALPHA for the others). */
export function overlayAlphas(classes) {
  return classes.map((name) => (Object.hasOwn(CLASS_ALPHA, name) ? CLASS_ALPHA[name] : DEFAULT_ALPHA));
}

// What the page shows for one prediction, as pure functions over typed arrays (no DOM): the percentages per
// class, the class map at display size, the coloured mask and the overlay.

/** Longest side of the pictures the page draws (larger photos are shown scaled down, as in the Gradio app). */
export const MAX_DISPLAY_SIDE = 1024;

/**
 * Opacity of each class's colour over the photo. The border is a thin band around the pet: nearly opaque, it
 * reads as an outline in the legend's colour; the background is only tinted, so the photo stays visible.
 */
export const OVERLAY_ALPHA = { border: 0.9, background: 0.3 };
export const DEFAULT_OVERLAY_ALPHA = 0.55;

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
 * The class colours blended over the photo, each class with its own opacity (`alphas`, by class id).
 *
 * @param {Uint8ClampedArray} photo RGBA photo pixels at display size.
 * @param {Uint8Array} classMap Class ids at display size.
 * @param {number[][]} colours [r, g, b] by class id.
 * @param {number[]} alphas Opacity by class id.
 * @returns {Uint8ClampedArray} RGBA pixels (Uint8ClampedArray rounds the blend to the nearest value).
 */
export function paintOverlay(photo, classMap, colours, alphas) {
  const out = new Uint8ClampedArray(photo.length);
  for (let i = 0; i < classMap.length; i++) {
    const id = Math.min(classMap[i], colours.length - 1);
    const [r, g, b] = colours[id];
    const a = alphas[id];
    out[4 * i] = (1 - a) * photo[4 * i] + a * r;
    out[4 * i + 1] = (1 - a) * photo[4 * i + 1] + a * g;
    out[4 * i + 2] = (1 - a) * photo[4 * i + 2] + a * b;
    out[4 * i + 3] = 255;
  }
  return out;
}

/** The overlay opacity of each class, by class id. */
export function overlayAlphas(classes) {
  return classes.map((name) => (Object.hasOwn(OVERLAY_ALPHA, name) ? OVERLAY_ALPHA[name] : DEFAULT_OVERLAY_ALPHA));
}

// PIL's `Image.resize((width, height), Image.Resampling.BILINEAR)` on RGB pixels, ported bit for bit.
//
// The model was trained on photos resized this way (model.tflite takes the resized pixels, see
// beam_seg/train/litert.py), so the page must produce the same bytes as the Python runtime, not a look-alike
// (canvas drawImage smoothing differs from browser to browser). This follows Pillow's src/libImaging/Resample.c:
//   1. a triangle filter of support 1.0, widened by the reduction factor when shrinking (antialias);
//   2. sampling at pixel centres: the output pixel xx looks at input position (xx + 0.5) * scale;
//   3. each output pixel's weights normalised to sum 1, then turned into 22-bit fixed point (PRECISION_BITS),
//      rounded half away from zero;
//   4. a horizontal pass then a vertical pass (vertical first for images over 100 times taller than wide, as
//      PIL's Image.resize does), each rounding to uint8 with PIL's clipping.

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

/** The bilinear (triangle) filter of Resample.c. */
function bilinearFilter(x) {
  const ax = Math.abs(x);
  return ax < 1.0 ? 1.0 - ax : 0.0;
}

/** Clips a fixed-point sum to uint8 like Resample.c's clip8 (its lookup table is a clamp of `sum >> 22`). */
function clip8(sum) {
  const value = sum >> PRECISION_BITS;
  return value < 0 ? 0 : value > 255 ? 255 : value;
}

/**
 * The integer weights of one axis: Resample.c's precompute_coeffs followed by normalize_coeffs_8bpc.
 *
 * @param {number} inSize Input length along the axis.
 * @param {number} outSize Output length along the axis.
 * @returns {{ksize: number, bounds: Int32Array, weights: Int32Array}} For output position i: the first input
 *     index bounds[2i], the number of inputs bounds[2i+1], and their weights at weights[i * ksize ...].
 */
export function coefficients(inSize, outSize) {
  const scale = inSize / outSize; // The box is the whole image: (in1 - in0) / outSize with in0 = 0.
  const filterScale = Math.max(scale, 1.0);
  const support = 1.0 * filterScale; // BILINEAR's support, widened when shrinking.
  const ksize = Math.ceil(support) * 2 + 1;
  const invFilterScale = 1.0 / filterScale;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const raw = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5); // C's (int) cast truncates toward zero.
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let total = 0.0;
    for (let x = 0; x < xmax; x++) {
      const w = bilinearFilter((x + xmin - center + 0.5) * invFilterScale);
      raw[x] = w;
      total += w;
    }
    for (let x = 0; x < xmax; x++) {
      const k = total !== 0.0 ? raw[x] / total : raw[x];
      weights[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

/**
 * One pass along x: `channels`-interleaved rows [rowFirst, rowFirst + rows) of `src` → 3-channel `width`-wide rows.
 */
function horizontalPass(src, srcWidth, channels, rowFirst, rows, width) {
  const { ksize, bounds, weights } = coefficients(srcWidth, width);
  const out = new Uint8Array(width * rows * 3);
  for (let y = 0; y < rows; y++) {
    const rowIn = (y + rowFirst) * srcWidth * channels;
    const rowOut = y * width * 3;
    for (let xx = 0; xx < width; xx++) {
      const xmin = bounds[2 * xx];
      const count = bounds[2 * xx + 1];
      const k = xx * ksize;
      let r = HALF;
      let g = HALF;
      let b = HALF;
      for (let x = 0; x < count; x++) {
        const p = rowIn + (x + xmin) * channels;
        const w = weights[k + x];
        r += src[p] * w;
        g += src[p + 1] * w;
        b += src[p + 2] * w;
      }
      out[rowOut + 3 * xx] = clip8(r);
      out[rowOut + 3 * xx + 1] = clip8(g);
      out[rowOut + 3 * xx + 2] = clip8(b);
    }
  }
  return out;
}

/** One pass along y over `channels`-interleaved `width`-wide rows, with row indices shifted by `rowShift`. */
function verticalPass(src, width, channels, srcHeight, height, rowShift) {
  const { ksize, bounds, weights } = coefficients(srcHeight, height);
  const out = new Uint8Array(width * height * 3);
  for (let yy = 0; yy < height; yy++) {
    const ymin = bounds[2 * yy] - rowShift;
    const count = bounds[2 * yy + 1];
    const k = yy * ksize;
    for (let x = 0; x < width; x++) {
      let r = HALF;
      let g = HALF;
      let b = HALF;
      for (let y = 0; y < count; y++) {
        const p = ((y + ymin) * width + x) * channels;
        const w = weights[k + y];
        r += src[p] * w;
        g += src[p + 1] * w;
        b += src[p + 2] * w;
      }
      const q = (yy * width + x) * 3;
      out[q] = clip8(r);
      out[q + 1] = clip8(g);
      out[q + 2] = clip8(b);
    }
  }
  return out;
}

/** Keeps the first three of `channels` interleaved channels (no resampling). */
function toRgb(src, pixels, channels) {
  if (channels === 3) return Uint8Array.from(src.subarray(0, pixels * 3));
  const out = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    out[3 * i] = src[channels * i];
    out[3 * i + 1] = src[channels * i + 1];
    out[3 * i + 2] = src[channels * i + 2];
  }
  return out;
}

/**
 * Resizes RGB(A) pixels to width x height exactly like PIL's BILINEAR resize of the RGB image.
 *
 * @param {Uint8Array|Uint8ClampedArray} src Interleaved pixels, row-major (ImageData.data is RGBA: channels 4).
 * @param {number} srcWidth Input width.
 * @param {number} srcHeight Input height.
 * @param {number} width Output width.
 * @param {number} height Output height.
 * @param {number} [channels=4] Channels per input pixel (3 or 4; a 4th channel is ignored, as in PIL's RGB mode).
 * @returns {Uint8Array} width * height * 3 RGB bytes, row-major.
 */
export function resizeBilinear(src, srcWidth, srcHeight, width, height, channels = 4) {
  const needX = width !== srcWidth;
  const needY = height !== srcHeight;
  if (!needX && !needY) return toRgb(src, srcWidth * srcHeight, channels);
  if (srcHeight > srcWidth * 100 && height < srcHeight) {
    // PIL's Image.resize: very tall images are resized vertically first, then horizontally.
    const tall = needY ? verticalPass(src, srcWidth, channels, srcHeight, height, 0) : toRgb(src, srcWidth * srcHeight, channels);
    return needX ? horizontalPass(tall, srcWidth, 3, 0, height, width) : tall;
  }
  if (!needX) return verticalPass(src, srcWidth, channels, srcHeight, height, 0);
  // Only the input rows the vertical pass reads are resampled horizontally (Resample.c's ybox_first/ybox_last).
  const { bounds } = coefficients(srcHeight, height);
  const rowFirst = bounds[0];
  const rowLast = bounds[2 * height - 2] + bounds[2 * height - 1];
  const wide = horizontalPass(src, srcWidth, channels, rowFirst, rowLast - rowFirst, width);
  return needY ? verticalPass(wide, width, 3, srcHeight, height, rowFirst) : wide;
}

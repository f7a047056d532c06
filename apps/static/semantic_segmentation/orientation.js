// The project's EXIF rule in the browser: pixels are used in their stored order, an Orientation tag is ignored.
//
// Browsers rotate JPEGs by their EXIF Orientation tag when decoding, whatever createImageBitmap's
// `imageOrientation: "none"` asks (Chromium applies it anyway). So, like stage 1 does for the JPEGs it keeps
// (`drop_orientation` in beam_seg/data/imaging.py, mirrored here), the tag is set to 1 (normal) in a copy of the
// file before the browser decodes it; every other byte stays as it was.

/** Where IFD0's Orientation value (one SHORT) sits in the EXIF block whose TIFF header starts at `tiff`. */
function orientationOffset(view, tiff, end) {
  if (tiff + 8 > end) return null;
  const order = String.fromCharCode(view.getUint8(tiff), view.getUint8(tiff + 1));
  if (order !== "II" && order !== "MM") return null;
  const little = order === "II";
  const ifd = tiff + view.getUint32(tiff + 4, little);
  if (ifd + 2 > end) return null;
  const entries = view.getUint16(ifd, little);
  for (let i = 0; i < entries; i++) {
    const entry = ifd + 2 + 12 * i;
    if (entry + 12 > end) return null;
    const tag = view.getUint16(entry, little);
    const kind = view.getUint16(entry + 2, little);
    const count = view.getUint32(entry + 4, little);
    if (tag === 0x0112 && kind === 3 && count === 1) return { offset: entry + 8, little };
  }
  return null;
}

/**
 * A JPEG's bytes with the EXIF Orientation tag set to 1; other files, and JPEGs without the tag, unchanged.
 *
 * @param {Uint8Array} bytes The file.
 * @returns {{bytes: Uint8Array, orientation: number}} The bytes to decode and the orientation the file had.
 */
export function dropOrientation(bytes) {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return { bytes, orientation: 1 }; // Not a JPEG.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 2; // After SOI.
  while (pos + 4 <= bytes.length && bytes[pos] === 0xff) {
    const marker = bytes[pos + 1];
    if (marker === 0xd9 || marker === 0xda) break; // End of image / start of scan: no metadata after this.
    const length = view.getUint16(pos + 2);
    const exif = marker === 0xe1 && pos + 10 <= bytes.length && String.fromCharCode(...bytes.subarray(pos + 4, pos + 10)) === "Exif\0\0";
    if (exif) {
      const found = orientationOffset(view, pos + 10, Math.min(bytes.length, pos + 2 + length));
      if (found) {
        const value = view.getUint16(found.offset, found.little);
        if (value === 1) return { bytes, orientation: 1 };
        const copy = bytes.slice();
        new DataView(copy.buffer).setUint16(found.offset, 1, found.little);
        return { bytes: copy, orientation: value };
      }
    }
    pos += 2 + length;
  }
  return { bytes, orientation: 1 };
}

// Decoder for GET /albums/{key}/map: `PMAP`, u32 header length, JSON header (space-padded so the arrays are 8-byte
// aligned), then ids (u32 or u64), x f32, y f32, cluster i16, all little-endian. Arrays are views, not copies: at
// 100k points the payload is ~1.4 MB and is read once.

const MAGIC = 'PMAP';

/** @returns {{header: object, ids: Uint32Array|BigUint64Array, x: Float32Array, y: Float32Array, cluster: Int16Array}} */
export function decodeMap(buffer) {
  const view = new DataView(buffer);
  const magic = String.fromCharCode(...new Uint8Array(buffer, 0, Math.min(4, buffer.byteLength)));
  if (magic !== MAGIC || buffer.byteLength < 8) throw new Error('Not a PhotoMap map payload');
  const headerLength = view.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, headerLength)));
  const count = header.count;
  let offset = 8 + headerLength;
  const take = (Type) => {
    const array = new Type(buffer, offset, count);
    offset += count * Type.BYTES_PER_ELEMENT;
    return array;
  };
  const ids = take(header.id_type === 'uint64' ? BigUint64Array : Uint32Array);
  const x = take(Float32Array);
  const y = take(Float32Array);
  const cluster = take(Int16Array);
  if (offset !== buffer.byteLength) throw new Error('Map payload length does not match its header');
  return { header, ids, x, y, cluster };
}

// Distinct, readable on a dark background; cluster -1 (noise/unplaced) is grey.
export const PALETTE = [
  [78, 140, 255], [62, 207, 142], [255, 170, 60], [235, 90, 120], [170, 120, 255], [80, 210, 230],
  [230, 220, 80], [255, 120, 70], [140, 200, 90], [210, 130, 210], [120, 160, 200], [250, 150, 170],
];
const NOISE = [130, 135, 150];

/** Interleaved x,y positions and RGBA colours for deck.gl's binary attributes. */
export function pointAttributes({ x, y, cluster }) {
  const count = x.length;
  const positions = new Float32Array(count * 2);
  const colors = new Uint8Array(count * 4);
  for (let i = 0; i < count; i += 1) {
    positions[2 * i] = x[i];
    positions[2 * i + 1] = y[i];
    const rgb = cluster[i] < 0 ? NOISE : PALETTE[cluster[i] % PALETTE.length];
    colors.set(rgb, 4 * i);
    colors[4 * i + 3] = 220;
  }
  return { positions, colors };
}

/**
 * The cluster labels worth drawing: one per distinct text (the biggest cluster keeps it), biggest first, and each
 * anchored towards the inside of the map so a label near an edge is not cut off. Pure, for unit tests.
 */
export function labelPlacements(clusters, bounds) {
  const [minX, , maxX] = bounds || [0, 0, 1, 1];
  const span = Math.max(maxX - minX, 1e-6);
  const seen = new Set();
  return [...(clusters || [])]
    .filter((c) => c.label)
    .sort((a, b) => b.count - a.count)
    .filter((c) => {
      const key = c.label.trim().toLowerCase();
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .map((c) => {
      const at = (c.x - minX) / span;
      return { ...c, anchor: at < 0.25 ? 'start' : at > 0.75 ? 'end' : 'middle' };
    });
}

/**
 * Drop labels that would overlap a bigger one on screen. `project` maps [x, y] to pixels; `charPx` is the width of
 * one character at the label size. Pure, for unit tests.
 */
export function withoutOverlaps(placed, project, charPx = 7, heightPx = 16) {
  const kept = [];
  const boxes = [];
  for (const label of placed) {
    const [px, py] = project([label.x, label.y]);
    const width = label.label.length * charPx;
    const left = label.anchor === 'start' ? px : label.anchor === 'end' ? px - width : px - width / 2;
    const box = [left, py - heightPx / 2, left + width, py + heightPx / 2];
    if (boxes.some((b) => box[0] < b[2] && box[2] > b[0] && box[1] < b[3] && box[3] > b[1])) continue;
    boxes.push(box);
    kept.push(label);
  }
  return kept;
}

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

const LABEL_MAX_CHARS = 28; // three label words fit; ~190 px at the label size, inside the narrowest (320 px) panel

/** What makes two labels "the same" to a reader: their words, ignoring case, punctuation and order. */
export function labelKey(text) {
  return (text || '').toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean).sort().join(' ');
}

/** The label as drawn: whitespace collapsed, cut at a word boundary with an ellipsis when longer than `maxChars`. */
export function shortLabel(text, maxChars = LABEL_MAX_CHARS) {
  const clean = (text || '').replace(/\s+/g, ' ').trim().replace(/[\s,;:]+$/, '');
  if (clean.length <= maxChars) return clean;
  const cut = clean.slice(0, maxChars - 1);
  const space = cut.lastIndexOf(' ');
  // a word cut in half reads worse than a shorter label, unless that would leave almost nothing
  const kept = space >= maxChars / 2 ? cut.slice(0, space) : cut;
  return `${kept.replace(/[\s,;:]+$/, '')}…`;
}

/**
 * The cluster labels worth drawing: one per distinct text (the biggest cluster's), biggest first, and each
 * anchored towards the inside of the map so a label near an edge is not cut off. `text` is what is drawn; two labels
 * whose words are the same (in any order), or that read the same once shortened, are drawn once; `members` lists the
 * ids of every cluster a drawn label stands for (its own first), `total` their images. Pure, for unit tests.
 */
export function labelPlacements(clusters, bounds) {
  const [minX, , maxX] = bounds || [0, 0, 1, 1];
  const span = Math.max(maxX - minX, 1e-6);
  const shownBy = new Map(); // label key -> the placed label that already shows that text
  const placed = [];
  for (const c of [...(clusters || [])].filter((c) => labelKey(c.label)).sort((a, b) => b.count - a.count)) {
    const text = shortLabel(c.label);
    const keys = [labelKey(c.label), labelKey(text)];
    const owner = keys.map((key) => shownBy.get(key)).find(Boolean);
    if (owner) {
      owner.members.push(c.id); // drawn once, but a click on it filters to every cluster it stands for
      owner.total += c.count;
      continue;
    }
    const at = (c.x - minX) / span;
    const label = { ...c, text, members: [c.id], total: c.count, anchor: at < 0.25 ? 'start' : at > 0.75 ? 'end' : 'middle' };
    keys.forEach((key) => shownBy.set(key, label));
    placed.push(label);
  }
  return placed;
}

/**
 * Drop labels that would overlap a bigger one on screen. `project` maps [x, y] to pixels. Options: `measure(text)`
 * is a label's width in pixels (background included), `heightPx` its height, `gapPx` the least space between two.
 * Given the view's `width` and `height`, a label is also kept inside it: its centroid must be on screen, and it is
 * shifted by `offset` ([dx, dy] pixels, for the TextLayer's pixel offset) so no part is cut off at an edge; one wider
 * than the view is dropped. Pure, for unit tests.
 */
export function withoutOverlaps(placed, project, options = {}) {
  const { measure = (text) => text.length * 7, heightPx = 16, gapPx = 2, width = null, height = null, padPx = 4 } = options;
  const bounded = width !== null && height !== null;
  const kept = [];
  const boxes = [];
  for (const label of placed) {
    const text = label.text ?? label.label;
    const [px, py] = project([label.x, label.y]);
    if (bounded && (px < 0 || px > width || py < 0 || py > height)) continue; // its cluster is out of view
    const w = measure(text);
    if (bounded && w > width - 2 * padPx) continue;
    let left = label.anchor === 'start' ? px : label.anchor === 'end' ? px - w : px - w / 2;
    let top = py - heightPx / 2;
    let dx = 0;
    let dy = 0;
    if (bounded) {
      dx = Math.max(padPx - left, Math.min(0, width - padPx - (left + w)));
      dy = Math.max(padPx - top, Math.min(0, height - padPx - (top + heightPx)));
      left += dx;
      top += dy;
    }
    const box = [left - gapPx / 2, top - gapPx / 2, left + w + gapPx / 2, top + heightPx + gapPx / 2];
    if (boxes.some((b) => box[0] < b[2] && box[2] > b[0] && box[1] < b[3] && box[3] > b[1])) continue;
    boxes.push(box);
    kept.push({ ...label, text, offset: [dx, dy] });
  }
  return kept;
}

// ---- lasso ----

export const LASSO_MIN_PX = 5; // a drag smaller than this either way is a click that wobbled, not a lasso

/** Whether a freehand path (screen [x, y] points) is a lasso at all: three points or more, spanning LASSO_MIN_PX. */
export function isLasso(path, minPx = LASSO_MIN_PX) {
  if (!path || path.length < 3) return false;
  const xs = path.map((p) => p[0]);
  const ys = path.map((p) => p[1]);
  return Math.max(...xs) - Math.min(...xs) >= minPx || Math.max(...ys) - Math.min(...ys) >= minPx;
}

/** Whether (x, y) lies inside `polygon` ([[x, y], ...], closed implicitly): even-odd rule, so a self-crossing
 * freehand loop selects what it encloses an odd number of times, like a drawing program. */
export function pointInPolygon(x, y, polygon) {
  return insideFlat(x, y, Float64Array.from(polygon.flat()));
}

/** The even-odd test on a flat [x0, y0, x1, y1, ...] polygon: no allocation, for 100k points times ~500 edges. */
function insideFlat(x, y, flat) {
  let inside = false;
  const n = flat.length;
  for (let i = 0, j = n - 2; i < n; j = i, i += 2) {
    const yi = flat[i + 1];
    const yj = flat[j + 1];
    // the edge straddles the horizontal through y (half-open, so a vertex is counted once) and crosses right of x
    if (yi > y !== yj > y && x < ((flat[j] - flat[i]) * (y - yi)) / (yj - yi) + flat[i]) inside = !inside;
  }
  return inside;
}

/** Indices of the points (interleaved screen x, y) inside `polygon`; its bounding box skips most points cheaply. */
export function pointsInPolygon(xy, polygon) {
  if (!polygon || polygon.length < 3) return [];
  const flat = Float64Array.from(polygon.flat());
  let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
  for (let i = 0; i < flat.length; i += 2) {
    minX = Math.min(minX, flat[i]);
    maxX = Math.max(maxX, flat[i]);
    minY = Math.min(minY, flat[i + 1]);
    maxY = Math.max(maxY, flat[i + 1]);
  }
  const inside = [];
  for (let i = 0; i < xy.length / 2; i += 1) {
    const x = xy[2 * i];
    const y = xy[2 * i + 1];
    if (x < minX || x > maxX || y < minY || y > maxY) continue;
    if (insideFlat(x, y, flat)) inside.push(i);
  }
  return inside;
}

/** SVG path data for a freehand lasso, closed. */
export function lassoPath(path) {
  if (!path || !path.length) return '';
  return `M${path.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join('L')}Z`;
}

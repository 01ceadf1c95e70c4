// The map's pure parts: the lasso's point-in-polygon and the readable-label placement (node --test).

import assert from 'node:assert/strict';
import test from 'node:test';

import {
  isLasso,
  labelKey,
  labelPlacements,
  lassoPath,
  pointInPolygon,
  pointsInPolygon,
  shortLabel,
  withoutOverlaps,
} from '../sidepanel/map-payload.js';

const SQUARE = [[0, 0], [10, 0], [10, 10], [0, 10]];
// a "C" open to the right: its mouth (x 4..10, y 4..6) is outside
const C_SHAPE = [[0, 0], [10, 0], [10, 4], [4, 4], [4, 6], [10, 6], [10, 10], [0, 10]];

test('point in polygon: inside, outside, a concave shape, a self-crossing loop', () => {
  assert.equal(pointInPolygon(5, 5, SQUARE), true);
  assert.equal(pointInPolygon(-1, 5, SQUARE), false);
  assert.equal(pointInPolygon(5, 11, SQUARE), false);
  assert.equal(pointInPolygon(2, 5, C_SHAPE), true, 'the back of the C');
  assert.equal(pointInPolygon(7, 5, C_SHAPE), false, 'the mouth of the C');
  assert.equal(pointInPolygon(7, 8, C_SHAPE), true, 'the lower arm');
  // a figure eight: both loops are inside, the point where it crosses itself is not a hole
  const eight = [[0, 0], [10, 10], [10, 0], [0, 10]];
  assert.equal(pointInPolygon(2, 5, eight), true);
  assert.equal(pointInPolygon(8, 5, eight), true);
  assert.equal(pointInPolygon(5, 1, eight), false, 'above the crossing, between the loops');
  // a horizontal through a vertex counts that vertex once
  const diamond = [[5, 0], [10, 5], [5, 10], [0, 5]];
  assert.equal(pointInPolygon(5, 5, diamond), true);
  assert.equal(pointInPolygon(-1, 5, diamond), false);
  assert.equal(pointInPolygon(11, 5, diamond), false);
});

test('points in a lasso: interleaved screen positions in, row indices out', () => {
  const xy = new Float32Array([5, 5, 7, 5, 2, 8, 50, 50, 7, 8]);
  assert.deepEqual(pointsInPolygon(xy, SQUARE), [0, 1, 2, 4]);
  assert.deepEqual(pointsInPolygon(xy, C_SHAPE), [2, 4], 'the points in the mouth are left out');
  assert.deepEqual(pointsInPolygon(xy, [[0, 0], [1, 1]]), [], 'two points enclose nothing');
  assert.deepEqual(pointsInPolygon(new Float32Array(0), SQUARE), []);
});

test('a tiny drag is not a lasso; the overlay path is closed', () => {
  assert.equal(isLasso([[10, 10], [12, 11], [11, 13]]), false, 'a wobbling click');
  assert.equal(isLasso([[10, 10], [30, 10]]), false, 'two points');
  assert.equal(isLasso([[10, 10], [30, 10], [30, 30]]), true);
  assert.equal(isLasso([[10, 10], [10, 16], [11, 12]]), true, 'tall enough');
  assert.equal(isLasso([[10, 10], [18, 10], [14, 11]]), true, 'wide enough');
  assert.equal(lassoPath([[1, 2], [3.25, 4]]), 'M1.0,2.0L3.3,4.0Z');
  assert.equal(lassoPath([]), '');
});

test('labels: the same words in any order or case are one label; long ones are cut at a word', () => {
  assert.equal(labelKey('Sunset, beach'), labelKey('beach  sunset'));
  assert.notEqual(labelKey('sunset, beach'), labelKey('sunset, beaches'));
  assert.equal(shortLabel('  cat,\n dog  '), 'cat, dog');
  assert.equal(shortLabel('portrait, '), 'portrait', 'no dangling comma');
  const long = shortLabel('watercolor, mountains, lighthouse, evening');
  assert.ok(long.length <= 28, long);
  assert.equal(long, 'watercolor, mountains…');
  assert.equal(shortLabel('a'.repeat(40)).length, 28, 'one long word is cut where it must be');
  const clusters = [
    { id: 0, label: 'beach, sunset', count: 9, x: 1, y: 1 },
    { id: 1, label: 'Sunset, Beach', count: 5, x: 2, y: 2 },
    { id: 2, label: 'watercolor, mountains, lighthouse', count: 4, x: 3, y: 3 },
    { id: 3, label: 'watercolor, mountains, lake at dawn', count: 3, x: 4, y: 4 },
    { id: 4, label: '  ', count: 20, x: 5, y: 5 },
    { id: 5, label: 'dog', count: 2, x: 6, y: 6 },
  ];
  const placed = labelPlacements(clusters, [0, 0, 10, 10]);
  assert.deepEqual(placed.map((c) => c.id), [0, 2, 5], 'no label text is drawn twice, blanks are not drawn');
  assert.deepEqual(placed.map((c) => c.text), ['beach, sunset', 'watercolor, mountains…', 'dog']);
  assert.equal(placed[1].label, 'watercolor, mountains, lighthouse', 'the full text stays for the click');
  assert.deepEqual(placed.map((c) => c.members), [[0, 1], [2, 3], [5]], 'a label drawn once stands for every cluster it merged');
  assert.deepEqual(placed.map((c) => c.total), [14, 7, 2]);
});

test('labels stay inside the view: shifted in at the edges, dropped when off screen or too wide', () => {
  const view = { width: 200, height: 100, measure: (text) => text.length * 10, heightPx: 20, padPx: 4 };
  const at = (id, x, y, text) => ({ id, x, y, text, label: text, anchor: 'middle', count: 10 - id });
  const kept = withoutOverlaps(
    [
      at(0, 5, 50, 'left edge'), // 90 px wide, centred at x 5: would start at -40
      at(1, 198, 98, 'corner'), // bottom right
      at(2, 100, 10, 'top'),
      at(3, 250, 50, 'off screen'),
      at(4, 100, 50, 'a label far wider than the view'),
    ],
    ([x, y]) => [x, y],
    view,
  );
  assert.deepEqual(kept.map((c) => c.id), [0, 1, 2]);
  const box = (c) => {
    const w = c.text.length * 10;
    const left = c.x - w / 2 + c.offset[0];
    const top = c.y - 10 + c.offset[1];
    return [left, top, left + w, top + 20];
  };
  for (const c of kept) {
    const [l, t, r, b] = box(c);
    assert.ok(l >= 4 && t >= 4 && r <= 196 && b <= 96, `${c.text} is cut off: ${[l, t, r, b]}`);
  }
  assert.deepEqual(kept[2].offset, [0, 4], 'only as far as needed');
  // shifted in, a label can land on a bigger one: then it is dropped like any overlap
  const crowded = withoutOverlaps([at(0, 40, 50, 'first'), at(1, 2, 50, 'second')], ([x, y]) => [x, y], view);
  assert.deepEqual(crowded.map((c) => c.id), [0]);
  // the gap keeps two boxes that only touch apart
  const touching = [at(0, 25, 50, 'abc'), at(1, 60, 50, 'abc2')];
  assert.equal(withoutOverlaps(touching, ([x, y]) => [x, y], { ...view, gapPx: 0 }).length, 2);
  assert.equal(withoutOverlaps(touching, ([x, y]) => [x, y], { ...view, gapPx: 4 }).length, 1);
});

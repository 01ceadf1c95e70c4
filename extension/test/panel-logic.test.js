// Unit tests for the panel's pure logic (node's test runner; the browser tests in tests/extension cover the UI).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseEventBlock } from '../lib/daemon.js';
import { isHostMissing } from '../service-worker/connection.js';
import { isInvokeAITab } from '../service-worker/panel.js';
import { progressPercent, progressText } from '../settings/albums.js';
import { drawerFields, fullMetadataText } from '../sidepanel/drawer.js';
import { decodeMap, pointAttributes } from '../sidepanel/map-payload.js';
import { buildQuery } from '../sidepanel/search.js';

test('an SSE block yields its data JSON; comments and bad JSON yield nothing', () => {
  assert.deepEqual(parseEventBlock('event: progress\ndata: {"done": 3}'), { done: 3 });
  assert.equal(parseEventBlock(': keep-alive'), undefined);
  assert.equal(parseEventBlock('data: {not json'), undefined);
});

test('a missing native host is told apart from a host that failed', () => {
  assert.ok(isHostMissing('Specified native messaging host not found.'));
  assert.ok(isHostMissing('No such native application com.photomap.daemon'));
  assert.ok(!isHostMissing('Native host has exited.'));
});

test('InvokeAI tabs match on origin and path prefix', () => {
  assert.ok(isInvokeAITab('http://localhost:9090/', 'http://localhost:9090'));
  assert.ok(isInvokeAITab('http://box:9090/invoke/app', 'http://box:9090/invoke/'));
  assert.ok(!isInvokeAITab('http://box:9090/other', 'http://box:9090/invoke'));
  assert.ok(!isInvokeAITab('http://localhost:9091/', 'http://localhost:9090'));
  assert.ok(!isInvokeAITab('http://localhost:9090/', 'not a url'));
  assert.ok(!isInvokeAITab('file:///x', 'file:///'));
});

test('the search body carries only what the form has, and browses newest first without a query', () => {
  assert.deepEqual(buildQuery({ sort: 'score' }, null), { filters: {}, sort: 'date' });
  const body = buildQuery(
    { text: ' cat ', negative: 'dog', seed: '42', generator: 'invokeai', dateTo: '2026-01-31', sort: 'score', imageWeight: '0.3' },
    { id: 7 },
  );
  assert.deepEqual(body, {
    text: 'cat',
    negative_text: 'dog',
    image_id: 7,
    image_weight: 0.3,
    sort: 'score',
    filters: { seed: 42, generator: 'invokeai', date_to: '2026-01-31' },
  });
  assert.equal(buildQuery({ seed: 'abc', text: 'x' }, null).filters.seed, undefined);
  assert.equal(buildQuery({}, { b64: 'AAAA', label: 'x.png' }).image_base64, 'AAAA');
});

test('drawer rows skip empty fields and format LoRAs and reference images', () => {
  const rows = drawerFields({
    positive_prompt: 'a cat',
    negative_prompt: '',
    seed: 0,
    model: { name: 'sdxl' },
    loras: [{ name: 'ink', weight: 0.5 }],
    reference_images: [{ image_name: 'ref.png', model: 'ip', weight: 0.8 }],
    init_image: { image_name: 'init.png', strength: 0.7 },
  });
  assert.deepEqual(rows.map((r) => r[0]), ['positive_prompt', 'model', 'seed', 'init_image', 'loras', 'reference_images']);
  assert.equal(rows.find((r) => r[0] === 'seed')[2], '0');
  assert.equal(rows.find((r) => r[0] === 'loras')[2], 'ink (0.5)');
  assert.equal(rows.find((r) => r[0] === 'reference_images')[2], 'ref.png, ip, weight 0.8');
  assert.equal(rows.find((r) => r[0] === 'init_image')[2], 'init.png (strength 0.7)');
});

test('full metadata expands JSON chunks and keeps text chunks', () => {
  const text = fullMetadataText({ invokeai_metadata: '{"seed": 5}', parameters: 'a cat\nSteps: 20' });
  assert.deepEqual(JSON.parse(text), { invokeai_metadata: { seed: 5 }, parameters: 'a cat\nSteps: 20' });
});

test('progress reads as counts, rate and ETA; done is 100 %', () => {
  const running = { state: 'running', phase: 'embedding', done: 40, total: 120, rate: 12.5, eta_s: 6.4 };
  assert.equal(progressText(running), 'embedding 40/120 (12.5/s, ~7 s left)');
  assert.equal(progressPercent(running), 33);
  assert.equal(progressPercent({ state: 'done', done: 0, total: 0 }), 100);
  assert.equal(progressText({ state: 'failed', message: 'disk full' }), 'Failed: disk full');
});

function encodeMap(ids, xs, ys, clusters, idType = 'uint32') {
  let header = JSON.stringify({ format: 1, count: ids.length, id_type: idType, clusters: [] });
  header += ' '.repeat((8 - ((8 + header.length) % 8)) % 8);
  const idBytes = idType === 'uint64' ? 8 : 4;
  const n = ids.length;
  const buffer = new ArrayBuffer(8 + header.length + n * (idBytes + 4 + 4 + 2));
  const view = new DataView(buffer);
  new Uint8Array(buffer).set(new TextEncoder().encode('PMAP'), 0);
  view.setUint32(4, header.length, true);
  new Uint8Array(buffer).set(new TextEncoder().encode(header), 8);
  let at = 8 + header.length;
  for (const id of ids) {
    if (idType === 'uint64') view.setBigUint64(at, BigInt(id), true);
    else view.setUint32(at, id, true);
    at += idBytes;
  }
  for (const x of xs) (view.setFloat32(at, x, true), (at += 4));
  for (const y of ys) (view.setFloat32(at, y, true), (at += 4));
  for (const c of clusters) (view.setInt16(at, c, true), (at += 2));
  return buffer;
}

test('the map payload decodes to typed views; a truncated one is refused', () => {
  const buffer = encodeMap([3, 9], [0.5, -1], [2, 4], [0, -1]);
  const map = decodeMap(buffer);
  assert.deepEqual([...map.ids], [3, 9]);
  assert.deepEqual([...map.x], [0.5, -1]);
  assert.deepEqual([...map.cluster], [0, -1]);
  assert.equal(decodeMap(encodeMap([2 ** 40], [1], [1], [2], 'uint64')).ids[0], 2n ** 40n);
  assert.throws(() => decodeMap(buffer.slice(0, buffer.byteLength - 1)));
  assert.throws(() => decodeMap(new ArrayBuffer(16)), /Not a PhotoMap map payload/);
  const { positions, colors } = pointAttributes(map);
  assert.deepEqual([...positions], [0.5, 2, -1, 4]);
  assert.equal(colors.length, 8);
  assert.deepEqual([...colors.slice(4, 7)], [130, 135, 150]); // noise is grey
});

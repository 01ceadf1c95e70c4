// Unit tests for the panel's pure logic (node's test runner; the browser tests in tests/extension cover the UI).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseEventBlock } from '../lib/daemon.js';
import { HostError, isHostMissing, isStartFailure } from '../service-worker/connection.js';
import { isInvokeAITab } from '../service-worker/panel.js';
import { doneText, progressPercent, progressText } from '../lib/progress.js';
import { actionError, actionStates, drawerFields, formatBytes, fullMetadataText, NO_BACKEND } from '../sidepanel/drawer.js';
import { decodeMap, labelPlacements, pointAttributes, withoutOverlaps } from '../sidepanel/map-payload.js';
import { refreshFor } from '../sidepanel/follow.js';
import { activeFilters, buildQuery, countText, SEED_ERROR, validate } from '../sidepanel/search.js';

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

test('a daemon that failed to start is final, with the exact command from the host; other host errors are retried', () => {
  const failed = new HostError({ type: 'error', code: 'daemon_start_failed', message: 'The PhotoMap daemon did not start: x', command: '/v/bin/python -m photomapd serve' });
  assert.ok(isStartFailure(failed));
  assert.equal(failed.command, '/v/bin/python -m photomapd serve');
  assert.equal(failed.message, 'The PhotoMap daemon did not start: x');
  assert.ok(!isStartFailure(new HostError({ type: 'error', code: 'busy', message: 'try later' })));
  assert.ok(!isStartFailure(new Error('Native host has exited.')));
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
  assert.deepEqual(buildQuery({ sort: 'best' }, null), { filters: {}, sort: 'newest' });
  assert.deepEqual(buildQuery({ sort: 'oldest' }, null), { filters: {}, sort: 'oldest' });
  const body = buildQuery(
    { text: ' cat ', negative: 'dog', seed: '18446744073709551', generator: 'invokeai', dateTo: '2026-01-31', sort: 'best', imageWeight: '0.3', keywords: 'fox "red hat"', minScore: '0.2' },
    { id: 7 },
  );
  assert.deepEqual(body, {
    text: 'cat',
    negative_text: 'dog',
    keywords: 'fox "red hat"',
    image_id: 7,
    image_weight: 0.3,
    min_score: 0.2,
    sort: 'best',
    filters: { seed: '18446744073709551', generator: 'invokeai', date_to: '2026-01-31' },
  });
  assert.equal(buildQuery({ seed: 'abc', text: 'x' }, null).filters.seed, undefined);
  assert.equal(buildQuery({}, { b64: 'AAAA', label: 'x.png' }).image_base64, 'AAAA');
  assert.equal(buildQuery({ text: 'x' }, null, { showAll: true }).auto_cut, false);
  assert.equal(buildQuery({}, null, { showAll: true }).auto_cut, undefined, 'a browse has no cut to lift');
});

test('invalid seed and min score are refused with a message; chips name each active filter', () => {
  assert.deepEqual(validate({ seed: '12ab' }), { field: 'seed', message: SEED_ERROR });
  assert.equal(validate({ seed: ' 42 ' }), null);
  assert.equal(validate({ minScore: '2' }).field, 'minScore');
  assert.deepEqual(activeFilters({ model: 'juggernaut', generator: 'unknown', text: 'cat' }), [
    ['model', 'Model', 'juggernaut'],
    ['generator', 'Generator', 'unknown / none'],
  ]);
});

test('the count says how many passed the cut, of how many ranked', () => {
  assert.equal(countText({ total: 42, ranked: 524, cut: { mode: 'auto', min_score: 0.24 } }), '42 best matches of 524');
  assert.equal(countText({ total: 3, ranked: 9, cut: { mode: 'min_score', min_score: 0.3 } }), '3 of 9 scoring at least 0.3');
  assert.equal(countText({ total: 524, ranked: 524, cut: { mode: 'none' } }), '524 images');
  assert.equal(countText({ total: 1 }), '1 image');
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
  assert.deepEqual(rows.map((r) => r[0]), ['positive_prompt', 'model', 'seed', 'init_image', 'loras', 'reference_images', 'generator']);
  assert.equal(rows.find((r) => r[0] === 'generator')[2], 'No generation metadata');
  assert.equal(rows.find((r) => r[0] === 'seed')[2], '0');
  assert.equal(rows.find((r) => r[0] === 'loras')[2], 'ink (0.5)');
  assert.equal(rows.find((r) => r[0] === 'reference_images')[2], 'ref.png, ip, weight 0.8');
  assert.equal(rows.find((r) => r[0] === 'init_image')[2], 'init.png (strength 0.7)');
});

test('the drawer names the file, its size and dimensions, and the generator with its version', () => {
  const rows = Object.fromEntries(
    drawerFields(
      { generator: 'a1111', app_version: 'v1.10.1', steps: 30, cfg_scale: 7, scheduler: 'DPM++ 2M', schedule_type: 'Karras', init_image: { image_name: 'data:image/png;base64,AAAA' } },
      { path: '/home/u/out/cat 01.png', size: 1536000, width: 1024, height: 768 },
    ).map(([id, , text]) => [id, text]),
  );
  assert.equal(rows.file_name, 'cat 01.png');
  assert.equal(rows.path, '/home/u/out/cat 01.png');
  assert.equal(rows.size, '1.5 MB');
  assert.equal(rows.dimensions, '1024 × 768');
  assert.equal(rows.generator, 'A1111 / Forge v1.10.1');
  assert.equal(rows.scheduler, 'DPM++ 2M · Karras');
  assert.equal(rows.init_image, 'embedded in the file');
  assert.equal(formatBytes(900), '900 bytes');
});

test('the actions say why they are grey: no backend, an old server, or no InvokeAI metadata', () => {
  assert.deepEqual(actionStates({ recallable: true }, { url: '' }).ref, { disabled: true, title: NO_BACKEND });
  const old = { url: 'http://box:9090', probe: { ok: true, actions: { recall: { available: false, reason: 'Recall needs InvokeAI 6.12 or newer (this server runs 6.10.0)' }, remix: { available: true, reason: null } } } };
  const states = actionStates({ recallable: true }, old);
  assert.equal(states.recall.disabled, true);
  assert.match(states.recall.title, /6\.12/);
  assert.equal(states.remix.disabled, false);
  assert.equal(states.ref.disabled, false);
  assert.match(actionStates({ recallable: false, generator: 'a1111' }, old).remix.title, /made with A1111/);
  assert.equal(actionError('Could not reach backend', 'http://box:9090'), 'Could not reach InvokeAI at http://box:9090: is it running?');
  assert.match(actionError('InvokeAI refused the request: HTTP 413', 'http://box:9090'), /larger than the server accepts/);
});

test('full metadata expands JSON chunks and keeps text chunks', () => {
  assert.match(fullMetadataText({}), /no embedded text metadata/);
  const text = fullMetadataText({ invokeai_metadata: '{"seed": 5}', parameters: 'a cat\nSteps: 20' });
  assert.deepEqual(JSON.parse(text), { invokeai_metadata: { seed: 5 }, parameters: 'a cat\nSteps: 20' });
});

test('progress reads as words, counts, rate and ETA; never "0/0" and never a raw phase name', () => {
  const running = { state: 'running', phase: 'embedding', done: 40, total: 120, rate: 12.5, eta_s: 6.4 };
  assert.equal(progressText(running), 'Reading images 40/120 (12.5/s, ~7 s left)');
  assert.equal(progressPercent(running), 33);
  const loading = { state: 'running', phase: 'loading_model', done: 0, total: 0 };
  assert.equal(progressText(loading), 'Loading the image model (about a minute the first time)…');
  assert.equal(progressPercent(loading), null, 'no counts yet: the bar is indeterminate, not 0 %');
  assert.equal(progressPercent({ state: 'done', done: 0, total: 0 }), 100);
  assert.equal(progressText({ state: 'failed', message: 'disk full' }), 'Failed: disk full');
  assert.match(progressText({ state: 'cancelled' }), /^Cancelled; what was indexed is kept/);
});

test('a finished run says what it did, or that there was nothing new', () => {
  assert.equal(doneText({ state: 'done', new: 0, changed: 0, removed: 0 }), 'Nothing new to index');
  assert.equal(doneText({ state: 'done', new: 0, changed: 0, removed: 0, skipped_count: 1 }), 'Nothing new to index (1 file skipped)');
  assert.equal(doneText({ state: 'done', new: 1200, changed: 0, removed: 3 }), 'Done: 1,200 new, 3 removed');
  assert.equal(doneText({ state: 'done', new: 1, changed: 0, removed: 0, skipped_count: 1 }), 'Nothing new to index (1 file skipped)', 'an unreadable file is found again each scan');
  assert.equal(doneText({ state: 'done', new: 4, changed: 0, removed: 0, skipped_count: 1 }), 'Done: 3 new, 1 skipped');
});

test('the grid follows committed batches and finished runs; the map only finished runs', () => {
  const run = (state, count, runId = 1) => ({ state, indexed_count: count, run_id: runId });
  assert.deepEqual(refreshFor(null, run('done', 9)), { grid: false, map: false }, 'first event: the panel just loaded');
  assert.deepEqual(refreshFor(run('running', 0), run('running', 32)), { grid: true, map: false });
  assert.deepEqual(refreshFor(run('running', 32), run('running', 32)), { grid: false, map: false });
  assert.deepEqual(refreshFor(run('running', 64), run('done', 70)), { grid: true, map: true });
  assert.deepEqual(refreshFor(run('done', 70, 1), run('done', 71, 2)), { grid: true, map: true }, 'a watcher run');
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

test('map labels: one per distinct text, anchored inwards at the edges, none on top of a bigger one', () => {
  const clusters = [
    { id: 0, label: 'abstract pattern', count: 5, x: 0, y: 0 },
    { id: 1, label: 'Abstract pattern', count: 9, x: 5, y: 5 },
    { id: 2, label: 'portrait', count: 4, x: 10, y: 0 },
    { id: 3, label: 'cat', count: 3, x: 5.1, y: 5 },
    { id: 4, label: '', count: 30, x: 1, y: 1 },
  ];
  const placed = labelPlacements(clusters, [0, 0, 10, 10]);
  assert.deepEqual(placed.map((c) => c.id), [1, 2, 3], 'the biggest "abstract pattern" keeps the label');
  assert.deepEqual(placed.map((c) => c.anchor), ['middle', 'end', 'middle']);
  const kept = withoutOverlaps(placed, ([x, y]) => [x * 30, y * 30]);
  assert.deepEqual(kept.map((c) => c.id), [1, 2], '"cat" would sit on "Abstract pattern"');
});

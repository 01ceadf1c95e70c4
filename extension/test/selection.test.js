// The selection's pure parts and the search body a scope (a map cluster, a selection) makes.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { buildQuery, scopeLabel } from '../sidepanel/search.js';
import { indexRange, MAX_SELECTION, Selection, selectionText } from '../sidepanel/selection.js';

test('a range runs from the anchor to the click in either direction', () => {
  assert.deepEqual(indexRange(2, 5), [2, 3, 4, 5]);
  assert.deepEqual(indexRange(5, 2), [2, 3, 4, 5]);
  assert.deepEqual(indexRange(3, 3), [3]);
});

test('the selection says each change once and stops at what one action takes', () => {
  const changes = [];
  const selection = new Selection((s) => changes.push(s.size));
  selection.add([1, 2, 3]);
  selection.toggle(2);
  selection.toggle('7'); // dataset ids arrive as strings
  assert.deepEqual(selection.list(), [1, 3, 7]);
  assert.ok(selection.has('3'));
  selection.replace([9]);
  assert.deepEqual(selection.list(), [9]);
  selection.clear();
  selection.clear(); // nothing to clear: no change reported
  assert.deepEqual(changes, [3, 2, 3, 1, 0]);
  selection.add(Array.from({ length: MAX_SELECTION + 5 }, (_, i) => i));
  assert.equal(selection.size, MAX_SELECTION);
  assert.ok(selection.capped);
  assert.equal(selectionText(selection.size, selection.capped), '10,000 selected (the most one action takes)');
  assert.equal(selectionText(1), '1 selected');
});

test('a scope narrows the search body and names its chip', () => {
  assert.deepEqual(buildQuery({}, null, { scope: { cluster: 4, label: 'red foxes' } }).filters, { cluster: 4 });
  assert.deepEqual(buildQuery({}, null, { scope: { ids: [3, 5] } }).filters, { ids: [3, 5] });
  assert.deepEqual(buildQuery({ starred: 'true' }, null).filters, { starred: true });
  assert.equal(scopeLabel({ cluster: 4, label: 'red foxes' }), 'Cluster: red foxes');
  assert.equal(scopeLabel({ cluster: -1 }), 'Cluster: unclustered');
  assert.equal(scopeLabel({ ids: [1] }), 'Selection: 1 image');
  assert.equal(scopeLabel(null), null);
});

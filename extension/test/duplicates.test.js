// Unit tests for the near-duplicates screen's pure logic (the browser test in tests/extension covers the screen).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  clampThreshold,
  duplicatesPath,
  largestMember,
  memberCaption,
  moreText,
  scoreText,
  summaryText,
  THRESHOLD_MAX,
  THRESHOLD_MIN,
} from '../sidepanel/duplicates.js';

test('a threshold is rounded to the slider step and kept inside the range the screen offers', () => {
  assert.equal(clampThreshold('0.934'), 0.93);
  assert.equal(clampThreshold(0.5), THRESHOLD_MIN);
  assert.equal(clampThreshold(1), THRESHOLD_MAX);
  assert.equal(clampThreshold('not a number'), THRESHOLD_MIN);
  assert.equal(clampThreshold(0.85, 0.8, 0.99), 0.85, 'a range widened for the daemon default is honoured');
});

test('the API path asks for the daemon default until a threshold is chosen, and escapes the album key', () => {
  assert.equal(duplicatesPath('photos'), '/albums/photos/duplicates?offset=0&limit=20');
  assert.equal(
    duplicatesPath('my album/2', { threshold: 0.9, offset: 40, limit: 20 }),
    '/albums/my%20album%2F2/duplicates?threshold=0.90&offset=40&limit=20',
  );
});

test('the summary counts groups and images, and says when only some groups are shown', () => {
  const groups = [{ ids: [1, 2, 3] }, { ids: [4, 5] }];
  assert.equal(summaryText({ total: 0, groups: [], threshold: 0.95 }), '');
  assert.equal(summaryText({ total: 2, groups, threshold: 0.95 }), '2 groups of near-duplicates, 5 images, at similarity ≥ 0.95');
  assert.equal(summaryText({ total: 1, groups: groups.slice(1), threshold: 0.9 }), '1 group of near-duplicates, 2 images, at similarity ≥ 0.90');
  assert.equal(summaryText({ total: 30, groups, threshold: 0.95 }), '30 groups of near-duplicates at similarity ≥ 0.95; showing 2 (5 images)');
});

test('scores read as similarity, exact copies as identical; "show more" counts what is left', () => {
  assert.equal(scoreText(0.96123), 'similarity 0.961');
  assert.equal(scoreText(1), 'looks identical');
  assert.equal(scoreText(0.99949), 'similarity 0.999');
  assert.equal(moreText(45, 20), 'Show more groups (25 more)');
  assert.equal(moreText(20, 20), '');
});

test('a caption names the file and gives dimensions and size only when the record has them', () => {
  assert.deepEqual(memberCaption({ id: 3, path: '/p/a/fox.png', width: 512, height: 768, size: 2048 }), {
    name: 'fox.png',
    details: '512 × 768 · 2.0 KB',
    path: '/p/a/fox.png',
  });
  assert.deepEqual(memberCaption({ id: 4, path: 'C:\\pics\\cat.jpg', size: 0 }), { name: 'cat.jpg', details: '0 bytes', path: 'C:\\pics\\cat.jpg' });
  assert.equal(memberCaption({ id: 5 }).name, 'image 5');
  assert.equal(memberCaption({ id: 5 }).details, '');
});

test('the largest copy is the one with the most pixels; a tie or missing dimensions badge none', () => {
  assert.equal(largestMember([{ id: 1, width: 512, height: 512 }, { id: 2, width: 1024, height: 1024 }]), 2);
  assert.equal(largestMember([{ id: 1, width: 512, height: 512 }, { id: 2, width: 512, height: 512 }]), null);
  assert.equal(largestMember([{ id: 1 }, { id: 2 }]), null);
  assert.equal(largestMember([{ id: 1, width: 2, height: 2 }, { id: 2, width: 2, height: 2 }, { id: 3, width: 4, height: 4 }]), 3);
});

// Unit tests for the Albums view's pure logic: board choices and the boards sent, board names on the cards, and the
// paused state of a board album (the browser test tests/extension/test_board_albums.py covers the form itself).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  boardChoices,
  boardLabel,
  boardNames,
  boardsBody,
  boardSummary,
  cardProgressText,
  isPaused,
  sameBoards,
  skippedText,
} from '../settings/album-boards.js';

// GET /invokeai/boards as the daemon answers it: Uncategorized first, as board_id null
const LISTED = [
  { board_id: null, board_name: 'Uncategorized' },
  { board_id: 'b-refs', board_name: 'PhotoMap Refs' },
  { board_id: 'b-sketch', board_name: 'Sketches' },
];

test('the board choices send Uncategorized as "none", first, and never twice', () => {
  assert.deepEqual(boardChoices(LISTED), [
    { value: 'none', name: 'Uncategorized' },
    { value: 'b-refs', name: 'PhotoMap Refs' },
    { value: 'b-sketch', name: 'Sketches' },
  ]);
  assert.deepEqual(boardChoices([]), [{ value: 'none', name: 'Uncategorized' }], 'a server that is away still offers Uncategorized');
});

test('All sends ["all"] alone, whatever else is ticked; otherwise the ticked boards in order', () => {
  assert.deepEqual(boardsBody(true, ['b-refs', 'none']), ['all']);
  assert.deepEqual(boardsBody(false, ['b-refs', 'none']), ['b-refs', 'none']);
  assert.deepEqual(boardsBody(false, []), [], 'nothing ticked is sent as such: the daemon says what is missing');
});

test('an edit that keeps the same boards, in any order, does not re-sync the album', () => {
  assert.ok(sameBoards(['none', 'b-refs'], ['b-refs', 'none']));
  assert.ok(!sameBoards(['b-refs'], ['b-refs', 'none']));
  assert.ok(!sameBoards(['all'], ['b-refs']));
});

test('a board album card names its boards, not ids; a board gone from the server is said so', () => {
  const names = boardNames(LISTED);
  assert.equal(boardSummary(['b-refs', 'none'], names), 'InvokeAI boards: PhotoMap Refs, Uncategorized');
  assert.equal(boardSummary(['none', 'b-sketch', 'b-refs'], names), 'InvokeAI boards: Sketches, PhotoMap Refs, Uncategorized');
  assert.equal(boardSummary(['b-sketch'], names), 'InvokeAI board: Sketches');
  assert.equal(boardSummary(['all'], names), 'All InvokeAI boards (and Uncategorized)');
  assert.equal(boardSummary(['all'], null), 'All InvokeAI boards (and Uncategorized)', 'needs no server');
  const gone = '0b5c3e1a-7d2f-4c1e-9a8b-1234567890ab';
  assert.equal(boardLabel(gone, names), 'a board InvokeAI no longer shows (0b5c3e1a…)');
  assert.equal(boardLabel(gone, null), 'board 0b5c3e1a…', 'names not known yet: no claim that it is gone');
  assert.equal(boardLabel('none', null), 'Uncategorized');
});

test('a failed board album is paused with the daemon message; a later run clears it', () => {
  const failed = { state: 'failed', phase: 'done', message: 'Could not reach backend' };
  assert.ok(isPaused('invokeai', failed));
  assert.ok(!isPaused('folders', failed), 'a folder album that failed is not paused: nothing retries it');
  assert.equal(cardProgressText('invokeai', true, failed), 'Paused: Could not reach backend (PhotoMap syncs again once InvokeAI answers)');
  assert.equal(cardProgressText('invokeai', false, failed), 'Paused: Could not reach backend (press Update Index to try again)');
  assert.equal(cardProgressText('folders', true, failed), 'Failed: Could not reach backend');
  const running = { state: 'running', phase: 'scanning', done: 0, total: 0 };
  assert.ok(!isPaused('invokeai', running));
  assert.equal(cardProgressText('invokeai', true, running), 'Listing the InvokeAI boards…');
  assert.equal(cardProgressText('folders', true, running), 'Looking for new and changed files…');
  assert.equal(cardProgressText('invokeai', true, { state: 'done', new: 2 }), 'Done: 2 new');
});

test('a skipped board image is named as an InvokeAI image, a skipped file by its path', () => {
  assert.equal(skippedText({ path: 'invokeai:abc.png', reason: 'not an image' }), 'InvokeAI image abc.png: not an image');
  assert.equal(skippedText({ path: '/x/broken.png', reason: 'truncated' }), '/x/broken.png: truncated');
});

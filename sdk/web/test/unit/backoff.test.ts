import assert from 'node:assert/strict';
import { test } from 'node:test';

import { backoffDelay, closeAction } from '../../src/index.js';
import { Delivery } from '../../src/delivery.js';
import { msg } from '../support/fakes.js';
import type { ImMessage } from '../../src/index.js';

test('backoff: full jitter between min and the doubling cap, never over max', () => {
  assert.equal(backoffDelay(0, 500, 20000, () => 0), 500);
  assert.equal(backoffDelay(0, 500, 20000, () => 0.999), 999);
  assert.equal(backoffDelay(1, 500, 20000, () => 0.999), 1499);
  assert.equal(backoffDelay(3, 500, 20000, () => 0.5), 500 + 2000);
  for (const step of [6, 10, 40, 1000]) {
    assert.equal(backoffDelay(step, 500, 20000, () => 0.999), 20000);
    assert.equal(backoffDelay(step, 500, 20000, () => 0), 500);
  }
  // Draws are spread: no two clients dropped together return together.
  const draws = new Set(Array.from({ length: 50 }, () => backoffDelay(5, 500, 20000, Math.random)));
  assert.ok(draws.size > 20);
});

test('close codes: the table', () => {
  assert.deepEqual(closeAction(4001, 'logged in elsewhere', true, false),
                   { kind: 'stop', why: 'kicked' });
  assert.deepEqual(closeAction(4002, 'token expired', true, false), { kind: 'token' });
  assert.deepEqual(closeAction(4002, 'token expired', true, true), { kind: 'stop', why: 'token' });
  assert.deepEqual(closeAction(4002, 'token expired', false, false),
                   { kind: 'stop', why: 'token' });
  assert.deepEqual(closeAction(1000, 'logout', true, false), { kind: 'stop', why: 'logout' });
  assert.deepEqual(closeAction(1000, 'heartbeat timeout', true, false),
                   { kind: 'retry', delay: 'backoff' });
  assert.deepEqual(closeAction(1001, 'server draining', true, false),
                   { kind: 'retry', delay: 'drain' });
  assert.deepEqual(closeAction(4004, 'too slow', true, false), { kind: 'retry', delay: 'slow' });
  for (const code of [1006, 1011, 1013, 4003, 4000]) {
    assert.deepEqual(closeAction(code, '', true, false), { kind: 'retry', delay: 'backoff' });
  }
});

const m = (seq: number) => msg(seq) as unknown as ImMessage;

test('delivery: in order, once; holes wait; bounded; retention skip', () => {
  const d = new Delivery(3);
  d.reset('E', 10);
  assert.equal(d.offer(m(10)), false);  // already delivered
  assert.equal(d.offer(m(12)), true);
  assert.deepEqual(d.drain(), []);      // 11 missing
  assert.equal(d.hasHole, true);
  assert.equal(d.offer(m(12)), false);  // duplicate while waiting
  d.offer(m(11));
  assert.deepEqual(d.drain().map((x) => x.seq), [11, 12]);
  assert.equal(d.seq, 12);
  assert.equal(d.hasHole, false);
  for (const s of [14, 15, 16, 17]) d.offer(m(s));  // bound 3: the highest goes
  d.offer(m(13));
  assert.deepEqual(d.drain().map((x) => x.seq), [13, 14, 15]);
  assert.equal(d.offer(m(16)), true);  // dropped above the bound: a sync brings it again
  assert.deepEqual(d.drain().map((x) => x.seq), [16]);
  d.offer(m(30));
  d.skipTo(29);  // 17..29 expired
  assert.deepEqual(d.drain().map((x) => x.seq), [30]);
  // Seqs above 2^16 and 2^32 are plain numbers: nothing wraps.
  d.reset('E', 2 ** 32 + 65535);
  d.offer(m(2 ** 32 + 65536));
  assert.deepEqual(d.drain().map((x) => x.seq), [2 ** 32 + 65536]);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LocalStorageStore } from '../../src/index.js';

test('LocalStorageStore: round trip under its prefix; a damaged entry reads as none', () => {
  const map = new Map<string, string>();
  const storage = {
    getItem: (k: string) => map.get(k) ?? null,
    setItem: (k: string, v: string) => void map.set(k, v),
  };
  const store = new LocalStorageStore(storage, 'p.');
  assert.equal(store.load('t/u/d'), null);
  store.save('t/u/d', { epoch: 'E', seq: 42 });
  assert.deepEqual(store.load('t/u/d'), { epoch: 'E', seq: 42 });
  assert.ok(map.has('p.t/u/d'));
  for (const bad of ['{', '{"epoch":1,"seq":2}', '{"epoch":"E","seq":-1}', '{"epoch":"E","seq":1.5}']) {
    map.set('p.t/u/d', bad);
    assert.equal(store.load('t/u/d'), null, bad);
  }
});

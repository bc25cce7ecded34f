import assert from 'node:assert/strict';
import { test } from 'node:test';

import { routeGateways, type FetchLike } from '../../src/index.js';
import { makeClient, settle } from '../support/fakes.js';

const answer = {
  tenant: 'default', user: 'alice', canary: false,
  gateways: [
    { node: 'n2', tcp: 'tcp://10.0.0.2:7001', ws: 'ws://10.0.0.2:7000/ws' },
    { node: 'n9', tcp: 'tcp://10.0.0.9:7001' },  // no WebSocket: skipped
    { node: 'n1', tcp: 'tcp://10.0.0.1:7001', ws: 'wss://n1.example/ws' },
  ],
};

// A fetch that records the URLs asked and answers `next()`.
function fakeFetch(next: () => { status: number; body?: unknown } | Error) {
  const asked: string[] = [];
  const fetch: FetchLike = async (url) => {
    asked.push(url);
    const r = next();
    if (r instanceof Error) throw r;
    return { ok: r.status === 200, status: r.status, json: async () => r.body };
  };
  return { fetch, asked };
}

const endpoint = 'http://10.0.0.1:7000/v1/route?tenant=default&user=alice';

test('route: the ws gateways of an answer, in order, at most 8', () => {
  assert.deepEqual(routeGateways(answer), ['ws://10.0.0.2:7000/ws', 'wss://n1.example/ws']);
  assert.deepEqual(routeGateways({ gateways: 'x' }), []);
  assert.deepEqual(routeGateways(null), []);
  assert.deepEqual(routeGateways({ gateways: [{ ws: 'http://x/ws' }, { ws: 7 }, null] }), []);
  const many = { gateways: Array.from({ length: 20 }, (_, i) => ({ ws: `ws://h${i}/ws` })) };
  assert.equal(routeGateways(many).length, 8);
});

test('route: routeEndpoint is asked before every attempt; gateways in turn, then url', async () => {
  const f = fakeFetch(() => ({ status: 200, body: answer }));
  const h = makeClient({ url: 'ws://fallback/ws', routeEndpoint: endpoint, fetch: f.fetch });
  h.client.connect();
  await settle();
  assert.deepEqual(f.asked, [endpoint]);
  assert.equal(h.sock().url, 'ws://10.0.0.2:7000/ws');
  // Each failed attempt dials the next candidate: the second gateway, the fallback, the first.
  const dialled: string[] = [];
  for (let i = 0; i < 3; i++) {
    h.sock().serverClose(1006);
    await h.reconnect();
    dialled.push(h.sock().url);
  }
  assert.deepEqual(dialled, ['wss://n1.example/ws', 'ws://fallback/ws', 'ws://10.0.0.2:7000/ws']);
  assert.equal(f.asked.length, 4);
  // Logged in on the second one; after that connection ends, the first gateway again.
  h.sock().serverClose(1006);
  await h.reconnect();
  assert.equal(h.sock().url, 'wss://n1.example/ws');
  await h.up();
  assert.equal(h.client.state, 'ready');
  h.sock().serverClose(1001, 'server draining');
  await h.reconnect();
  assert.equal(h.sock().url, 'ws://10.0.0.2:7000/ws');
  assert.equal(f.asked.length, 6);
  h.client.disconnect();
});

test('route: a failed route request dials url; without url the attempt fails and retries',
     async () => {
  let fail = true;
  const f = fakeFetch(() => (fail ? { status: 503 } : { status: 200, body: answer }));
  const h = makeClient({ url: 'ws://fallback/ws', routeEndpoint: endpoint, fetch: f.fetch });
  h.client.connect();
  await settle();
  assert.equal(h.sock().url, 'ws://fallback/ws');
  h.client.disconnect();

  const g = fakeFetch(() => (fail ? new Error('connection refused') : { status: 200, body: answer }));
  const alone = makeClient({ url: undefined, routeEndpoint: endpoint, fetch: g.fetch });
  alone.client.connect();
  await settle();
  assert.equal(alone.sockets.length, 0);
  assert.deepEqual(alone.errors, ['connect_failed']);
  // An answer without a WebSocket gateway fails the attempt the same way.
  fail = false;
  const none = fakeFetch(() => ({ status: 200, body: { gateways: [{ tcp: 'tcp://x:1' }] } }));
  const bare = makeClient({ url: undefined, routeEndpoint: endpoint, fetch: none.fetch });
  bare.client.connect();
  await settle();
  assert.equal(bare.sockets.length, 0);
  assert.deepEqual(bare.errors, ['connect_failed']);
  bare.client.disconnect();
  // The route answers again: the retry dials its first gateway.
  await alone.reconnect();
  assert.equal(alone.sock().url, 'ws://10.0.0.2:7000/ws');
  assert.equal(g.asked.length, 2);
  alone.client.disconnect();
});

test('route: an ImClient needs url, routeUrl or routeEndpoint', () => {
  assert.throws(() => makeClient({ url: undefined }), /url, routeUrl or routeEndpoint/);
});

// The SDK against a real imd: login refusals, kicks, token refresh, a drain and a restart.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { ImClient, MemoryStore, type ImError, type SocketFactory } from '../../src/index.js';
import { Imd, waitFor } from '../support/imd.js';
import { CountingSocket, connect, contiguous } from './helpers.js';

let imd: Imd;
before(async () => {
  imd = await Imd.start({ toml: '[auth]\ntoken_leeway_s = 1\n' });
});
after(async () => {
  await imd.close();
});

test('a bad token: invalid_token, no reconnect, ready() rejects', async () => {
  const sockets = CountingSocket.sockets.length;
  const client = new ImClient({
    url: imd.wsUrl, token: 'not.a.token', WebSocket: CountingSocket as unknown as SocketFactory,
    reconnectMinMs: 50,
  });
  const errors: string[] = [];
  client.on('error', (e) => errors.push(e.error));
  client.connect();
  await assert.rejects(client.ready(20000), (e: ImError) => e.error === 'stopped');
  assert.deepEqual(errors, ['invalid_token']);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(CountingSocket.sockets.length - sockets, 1);
  assert.equal(client.state, 'disconnected');
});

test('kicked by a login elsewhere: no reconnect, so two tabs do not kick each other', async () => {
  const first = await connect(imd, 'kim');
  const second = await connect(imd, 'kim');  // same device "web": the first is displaced
  await waitFor('the kick', () => first.kicks.length > 0);
  assert.deepEqual(first.kicks, ['login_elsewhere/4001']);
  await new Promise((r) => setTimeout(r, 1500));  // well past the reconnect backoff
  assert.equal(first.client.state, 'disconnected');
  assert.equal(second.client.state, 'ready');
  assert.deepEqual(second.kicks, []);
  second.client.disconnect();
});

test('token expiry: the server closes 4002, getToken is asked once, the session goes on',
     async () => {
  let asked = 0;
  const bob = await connect(imd, 'tess', {
    getToken: async () => {
      asked++;
      return imd.token('tess');
    },
  });
  // A token of 2 s: with a 1 s leeway the server ends the session about 3 s later.
  const shortLived = await connect(imd, 'tina', {
    token: await imd.token('tina', 2),
    getToken: async () => {
      asked++;
      return imd.token('tina');
    },
  });
  await waitFor('the 4002 and the new login', () => asked === 1 &&
                shortLived.states.filter((s) => s === 'ready').length === 2, 30000);
  assert.deepEqual(shortLived.kicks, []);
  const receipt = await bob.client.send({ to: 'tina', body: 'after refresh' });
  await waitFor('the message', () => shortLived.messages.some((m) => m.mid === receipt.mid));
  assert.equal(asked, 1);
  bob.client.disconnect();
  shortLived.client.disconnect();
});

test('SIGTERM drain, then a restarted server: reconnect through routeUrl, nothing lost',
     async () => {
  const server = await Imd.start();
  try {
    const route = () => server.wsUrl;
    const alice = await connect(server, 'alice', { routeUrl: route, url: undefined });
    const bob = await connect(server, 'bob', { routeUrl: route, url: undefined });
    await alice.client.send({ to: 'bob', body: 'before' });
    await server.stop();  // SIGTERM: session.kicked drain, close 1001
    await waitFor('both offline', () => alice.client.state !== 'ready' &&
                  bob.client.state !== 'ready');
    // Sent while the server is down: queued in the outbox.
    const queued = alice.client.send({ to: 'bob', body: 'while down' });
    await new Promise((r) => setTimeout(r, 300));
    await server.run();  // same data, new ports: routeUrl gives the new address
    const receipt = await queued;
    await waitFor('bob back', () => bob.client.state === 'ready');
    await waitFor('bob has both', () => bob.messages.some((m) => m.mid === receipt.mid));
    assert.deepEqual(bob.messages.map((m) => m.body), ['before', 'while down']);
    assert.ok(contiguous(bob.messages));
    assert.deepEqual(alice.messages.map((m) => m.body), ['before', 'while down']);
    alice.client.disconnect();
    bob.client.disconnect();
  } finally {
    await server.close();
  }
});

test('routeEndpoint: the client finds its gateway through GET /v1/route and chats', async () => {
  const route = `${imd.httpUrl}/v1/route?tenant=default&user=rita`;
  const answer = await (await fetch(route)).json() as { gateways: { ws: string }[] };
  assert.ok(answer.gateways.length >= 1);
  const sockets = CountingSocket.sockets.length;
  const rita = await connect(imd, 'rita', { routeEndpoint: route, url: undefined });
  assert.equal(rita.client.state, 'ready');
  assert.equal(rita.client.loginInfo?.user, 'rita');
  // It dialled the gateway the route answered (the fetch is Node's own).
  assert.equal(CountingSocket.sockets.length - sockets, 1);
  assert.equal(CountingSocket.sockets.at(-1)!.url, answer.gateways[0]!.ws);
  const sam = await connect(imd, 'sam');
  const receipt = await sam.client.send({ to: 'rita', body: 'found you' });
  await waitFor('the message', () => rita.messages.some((m) => m.mid === receipt.mid));
  rita.client.disconnect();
  sam.client.disconnect();
});

test('a client that never reaches the server: ready() times out, a send rejects in time',
     async () => {
  const client = new ImClient({
    url: 'ws://127.0.0.1:9/ws', token: 'x', WebSocket: CountingSocket as unknown as SocketFactory,
    store: new MemoryStore(), reconnectMinMs: 50, reconnectMaxMs: 200, sendTimeoutMs: 1000,
  });
  client.connect();
  await assert.rejects(client.ready(500), (e: ImError) => e.error === 'timeout');
  await assert.rejects(client.send({ to: 'bob', body: 'x' }), (e: ImError) => e.error === 'timeout');
  client.disconnect();
});

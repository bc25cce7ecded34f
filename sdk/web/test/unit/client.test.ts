import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ImError, MemoryStore } from '../../src/index.js';
import { loginBody, makeClient, msg, page, settle } from '../support/fakes.js';

test('connect: login, sync, ready; connect() is idempotent', async () => {
  const h = makeClient();
  h.client.connect();
  h.client.connect();
  await h.up({ last_seq: 2 }, [msg(1), msg(2)]);
  assert.equal(h.sockets.length, 1);
  assert.deepEqual(h.states, ['connecting', 'syncing', 'ready']);
  assert.deepEqual(h.messages, [1, 2]);
  assert.deepEqual(h.sock().sent[0], { id: 1, cmd: 'login', body: { token: 't1', device: 'web' } });
  await h.client.ready(1);
});

test('reconnect: backoff grows with each failure and resets only after a stable connection',
     async () => {
  const h = makeClient({ random: () => 0.5 });
  h.client.connect();
  await settle();
  const delays: number[] = [];
  for (let i = 0; i < 4; i++) {
    h.sock().serverClose(1006);  // never opened
    delays.push(h.timers.pendingDelays().at(-1)!);
    await h.timers.advance(delays.at(-1)!);
  }
  assert.deepEqual(delays, [750, 1000, 1500, 2500]);
  // Up for 1 s only: the next failure keeps growing.
  await h.up();
  await h.timers.advance(1000);
  h.sock().serverClose(1006);
  assert.equal(h.timers.pendingDelays().at(-1), 4500);
  await h.timers.advance(4500);
  // Up for longer than stableAfterMs: back to the first step.
  await h.up();
  await h.timers.advance(6000);
  h.sock().serverClose(1006);
  assert.equal(h.timers.pendingDelays().at(-1), 750);
});

test('reconnect: online, pageshow and visibilitychange retry at once', async () => {
  const h = makeClient();
  h.client.connect();
  await h.up();
  h.sock().serverClose(1006);
  assert.equal(h.sockets.length, 1);
  h.win.dispatchEvent(new Event('online'));
  await settle();
  assert.equal(h.sockets.length, 2);
  h.sock().serverClose(1006);
  h.win.dispatchEvent(new Event('pageshow'));
  await settle();
  assert.equal(h.sockets.length, 3);
  h.sock().serverClose(1006);
  h.doc.dispatchEvent(new Event('visibilitychange'));
  await settle();
  assert.equal(h.sockets.length, 4);
});

test('close 4001: kicked, and no reconnect ever', async () => {
  const h = makeClient();
  h.client.connect();
  await h.up();
  h.sock().push({ cmd: 'session.kicked', body: { reason: 'login_elsewhere' } });
  h.sock().serverClose(4001, 'logged in elsewhere');
  await h.timers.advance(120_000);
  h.win.dispatchEvent(new Event('online'));
  await settle();
  assert.equal(h.sockets.length, 1);
  assert.deepEqual(h.kicks, ['login_elsewhere/4001']);
  assert.equal(h.client.state, 'disconnected');
  await assert.rejects(h.client.ready(10), (e: ImError) => e.error === 'stopped');
});

test('close 4002: getToken once, a second 4002 is terminal', async () => {
  let asked = 0;
  const h = makeClient({ getToken: () => `fresh${++asked}` });
  h.client.connect();
  await h.up();
  h.sock().serverClose(4002, 'token expired');
  await h.timers.advance(0);
  assert.equal(asked, 1);
  assert.equal(h.sockets.length, 2);
  await settle();
  h.sock().open();
  await settle();
  assert.deepEqual(h.sock().last('login')?.body, { token: 'fresh1', device: 'web' });
  h.sock().serverClose(4002, 'login timeout');  // again, without a login in between
  await h.timers.advance(60_000);
  assert.equal(h.sockets.length, 2);
  assert.equal(asked, 1);
  assert.deepEqual(h.kicks, ['token_expired/4002']);
});

test('close 4002 after a successful refresh asks again (the counter resets on login)',
     async () => {
  let asked = 0;
  const h = makeClient({ getToken: () => `fresh${++asked}` });
  h.client.connect();
  await h.up();
  for (let i = 1; i <= 3; i++) {
    h.sock().serverClose(4002, 'token expired');
    await h.timers.advance(0);
    await h.up();
    assert.equal(asked, i);
    assert.equal(h.client.state, 'ready');
  }
});

test('login refused 401: a fresh token is asked once on the same socket, then terminal',
     async () => {
  let asked = 0;
  const h = makeClient({ token: undefined, getToken: () => `tok${++asked}` });
  h.client.connect();
  await settle();
  h.sock().open();
  await settle();
  h.sock().reply('login', undefined, { code: 401, error: 'token_expired', message: 'x' });
  await settle();
  assert.equal(asked, 2);
  assert.equal(h.sock().count('login'), 2);
  h.sock().reply('login', undefined, { code: 401, error: 'invalid_token', message: 'x' });
  await h.timers.advance(60_000);
  assert.equal(h.sockets.length, 1);
  assert.equal(h.client.state, 'disconnected');
  assert.ok(h.errors.includes('invalid_token'));
  assert.deepEqual(h.kicks, ['invalid_token/4002']);
});

test('close 1001 drain: the first retry is a jittered short wait', async () => {
  const h = makeClient({ random: () => 0.25 });
  h.client.connect();
  await h.up();
  await h.timers.advance(10_000);
  h.sock().serverClose(1001, 'server draining');
  assert.equal(h.timers.pendingDelays().at(-1), 500);  // 0.25 x drainJitterMs
});

test('close 4004: backs off without a reset, then resyncs from the position', async () => {
  const h = makeClient({ random: () => 0.999 });
  h.client.connect();
  await h.up({ last_seq: 3 }, [msg(1), msg(2), msg(3)]);
  await h.timers.advance(10_000);  // stable
  h.sock().serverClose(4004, 'too slow');
  assert.equal(h.timers.pendingDelays().at(-1), 999);
  await h.timers.advance(999);
  await h.logIn({ last_seq: 5 });
  assert.equal(h.sock().last('chat.sync')?.body?.after, 3);
  assert.equal(h.sock().last('chat.sync')?.body?.limit, 100);  // halved: pages that fit
  h.sock().reply('chat.sync', page([msg(4), msg(5)]));
  await settle();
  await h.timers.advance(10_000);
  h.sock().serverClose(4004, 'too slow');  // stable again, but slow: the step still grows
  assert.equal(h.timers.pendingDelays().at(-1), 1499);
  assert.deepEqual(h.messages, [1, 2, 3, 4, 5]);
});

test('stale-socket guard: an old socket\'s late frames and close never touch the new one',
     async () => {
  const h = makeClient({ pingIntervalMs: 1000, requestTimeoutMs: 2000 });
  h.client.connect();
  await h.up({ last_seq: 1 }, [msg(1)]);
  const old = h.sock();
  // The old socket goes silent: the ping times out, nothing else arrives: it is given up.
  await h.timers.advance(3000);
  assert.equal(h.sockets.length, 1);
  assert.equal(old.closedByClient, true);
  await h.reconnect();
  await h.up({ last_seq: 1 });
  const fresh = h.sock();
  assert.notEqual(fresh, old);
  assert.equal(h.client.state, 'ready');
  // Now the old socket wakes up: a push and its close event.
  old.push({ cmd: 'chat.message', body: msg(2) });
  old.push({ cmd: 'session.kicked', body: { reason: 'login_elsewhere' } });
  old.serverClose(4001, 'logged in elsewhere');
  await h.timers.advance(100);
  assert.equal(h.client.state, 'ready');
  assert.deepEqual(h.messages, [1]);
  assert.deepEqual(h.kicks, []);
  assert.equal(h.sockets.length, 2);
  // The new socket still works.
  fresh.push({ cmd: 'chat.message', body: msg(2) });
  await settle();
  assert.deepEqual(h.messages, [1, 2]);
});

test('liveness: a late ping answer does not drop a socket that is receiving', async () => {
  const h = makeClient({ pingIntervalMs: 1000, requestTimeoutMs: 2000 });
  h.client.connect();
  await h.up();
  await h.timers.advance(1500);  // ping sent at +1000
  h.sock().push({ cmd: 'chat.message', body: msg(1) });
  await h.timers.advance(1600);  // its timeout passes, but a frame came after it was sent
  assert.equal(h.sock().closedByClient, false);
  assert.equal(h.sockets.length, 1);
});

test('requests reject on disconnect and on timeout; none hangs', async () => {
  const h = makeClient({ requestTimeoutMs: 3000 });
  h.client.connect();
  await h.up();
  const created = h.client.createGroup('team', ['bob']);
  await settle();
  h.sock().serverClose(1006);
  await assert.rejects(created, (e: ImError) => e.error === 'disconnected');
  await h.reconnect();
  await h.up();
  const info = assert.rejects(h.client.groupInfo('g1'),
                              (e: ImError) => e.error === 'timeout' && e.code === 504);
  await h.timers.advance(3000);
  await info;
  // A group call while offline waits for ready, bounded by the request timeout.
  h.sock().serverClose(1006);
  const offline = assert.rejects(h.client.joinGroup('g1'), (e: ImError) => e.error === 'timeout');
  await h.timers.advance(3000);
  await offline;
});

test('outbox: offline sends go after login and sync, in order; bounded', async () => {
  const h = makeClient({ outboxLimit: 3 });
  const sends = [1, 2, 3].map((i) => h.client.send({ to: 'bob', body: `b${i}` }));
  await assert.rejects(h.client.send({ to: 'bob', body: 'b4' }),
                       (e: ImError) => e.error === 'outbox_full');
  h.client.connect();
  await h.logIn({ last_seq: 1 });
  assert.equal(h.sock().count('chat.send'), 0);  // not before the sync is done
  h.sock().reply('chat.sync', page([msg(1)]));
  await settle();
  assert.deepEqual(h.sock().sent.filter((f) => f.cmd === 'chat.send').map((f) => f.body?.body),
                   ['b1', 'b2', 'b3']);
  for (let seq = 2; seq <= 4; seq++) {
    h.sock().reply('chat.send', { mid: String(900 + seq), seq, ts: 5 });
  }
  const receipts = await Promise.all(sends);
  assert.deepEqual(receipts.map((r) => r.seq), [2, 3, 4]);
  // Our own sends take their places in the seq order.
  assert.deepEqual(h.messages, [1, 2, 3, 4]);
  assert.equal(h.errors.length, 0);
});

test('outbox: a retry reuses the same cid, after a disconnect and after a 503', async () => {
  const h = makeClient();
  h.client.connect();
  await h.up();
  const sent = h.client.send({ to: 'bob', body: 'once' });
  await settle();
  const cid = h.sock().last('chat.send')?.body?.cid;
  assert.ok(typeof cid === 'string' && cid.length > 0);
  h.sock().serverClose(1006);  // no answer: stored or not, we cannot know
  await h.reconnect();
  await h.up();
  assert.equal(h.sock().last('chat.send')?.body?.cid, cid);
  h.sock().reply('chat.send', undefined,
                 { code: 503, error: 'unavailable', message: 'full', retry_after_ms: 700 });
  await h.timers.advance(699);
  assert.equal(h.sock().count('chat.send'), 1);
  await h.timers.advance(1);
  assert.equal(h.sock().count('chat.send'), 2);
  assert.equal(h.sock().last('chat.send')?.body?.cid, cid);
  h.sock().reply('chat.send', { mid: '77', seq: 1, ts: 1 });
  assert.equal((await sent).mid, '77');
});

test('outbox: a refusal rejects with the cid; bad input rejects at once', async () => {
  const h = makeClient();
  h.client.connect();
  await h.up();
  const p = h.client.send({ group: 'g9', body: 'x', cid: 'my-cid' });
  await settle();
  h.sock().reply('chat.send', undefined, { code: 403, error: 'not_member', message: 'no' });
  await assert.rejects(p, (e: ImError) => e.error === 'not_member' && e.cid === 'my-cid');
  await assert.rejects(h.client.send({ to: 'a', group: 'g', body: '' }),
                       (e: ImError) => e.code === 400);
  let deep: Record<string, unknown> = {};
  for (let i = 0; i < 31; i++) deep = { d: deep };
  await assert.rejects(h.client.send({ to: 'a', body: '', extra: deep }),
                       (e: ImError) => e.code === 400);
});

test('outbox: a send not stored by sendTimeoutMs rejects with timeout', async () => {
  const h = makeClient({ sendTimeoutMs: 5000 });
  const p = assert.rejects(h.client.send({ to: 'bob', body: 'x' }),
                           (e: ImError) => e.error === 'timeout' && typeof e.cid === 'string');
  await h.timers.advance(5000);
  await p;
});

test('position: duplicates dropped, holes filled by a sync, pushes held during sync',
     async () => {
  const store = new MemoryStore();
  const h = makeClient({ store, holeWaitMs: 1000 });
  h.client.connect();
  await settle();
  h.sock().open();
  await settle();
  // A push before the login answer (the server allows it) is held until the sync is done.
  h.sock().push({ cmd: 'chat.message', body: msg(3) });
  h.sock().reply('login', loginBody({ last_seq: 3 }));
  await settle();
  h.sock().push({ cmd: 'chat.message', body: msg(4) });
  assert.deepEqual(h.messages, []);
  h.sock().reply('chat.sync', page([msg(1), msg(2), msg(3)]));
  await settle();
  assert.deepEqual(h.messages, [1, 2, 3, 4]);
  h.sock().push({ cmd: 'chat.message', body: msg(4) });  // duplicate
  h.sock().push({ cmd: 'chat.message', body: msg(6) });  // 5 is missing
  await settle();
  assert.deepEqual(h.messages, [1, 2, 3, 4]);
  await h.timers.advance(1000);
  assert.equal(h.sock().last('chat.sync')?.body?.after, 4);
  h.sock().reply('chat.sync', page([msg(5), msg(6)]));
  await settle();
  assert.deepEqual(h.messages, [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(store.load('default/alice/web'), { epoch: 'E1', seq: 6 });
  // Acks are cumulative and debounced: one for 1..4, one for 5..6.
  await h.timers.advance(600);
  assert.deepEqual(h.sock().sent.filter((f) => f.cmd === 'chat.ack').map((f) => f.body?.seq),
                   [4, 6]);
});

test('position: resumes from the store; an epoch change is a gap and a restart at 0',
     async () => {
  const store = new MemoryStore();
  store.save('default/alice/web', { epoch: 'E1', seq: 7 });
  const h = makeClient({ store });
  h.client.connect();
  await h.logIn({ last_seq: 9, acked_seq: 2 });
  assert.equal(h.sock().last('chat.sync')?.body?.after, 7);
  h.sock().reply('chat.sync', page([msg(8), msg(9)]));
  await settle();
  assert.deepEqual(h.messages, [8, 9]);
  // The server lost its history: new epoch.
  h.sock().serverClose(1006);
  await h.reconnect();
  await h.logIn({ epoch: 'E2', last_seq: 2 });
  assert.deepEqual(h.gaps, ['epoch@0']);
  assert.equal(h.sock().last('chat.sync')?.body?.after, 0);
  h.sock().reply('chat.sync', page([msg(1), msg(2)], { epoch: 'E2' }));
  await settle();
  assert.deepEqual(h.messages, [8, 9, 1, 2]);
  assert.deepEqual(store.load('default/alice/web'), { epoch: 'E2', seq: 2 });
});

test('position: retention gap skips to the first retained seq; paging until more is false',
     async () => {
  const h = makeClient({ syncLimit: 2 });
  h.client.connect();
  await h.logIn({ last_seq: 14 });
  h.sock().reply('chat.sync', page([msg(11), msg(12)], { first_seq: 11, gap: true, more: true }));
  await settle();
  assert.equal(h.sock().last('chat.sync')?.body?.after, 12);
  assert.equal(h.sock().last('chat.sync')?.body?.limit, 2);
  h.sock().reply('chat.sync', page([msg(13), msg(14)], { first_seq: 11 }));
  await settle();
  assert.deepEqual(h.gaps, ['retention@0']);
  assert.deepEqual(h.messages, [11, 12, 13, 14]);
  assert.equal(h.client.state, 'ready');
});

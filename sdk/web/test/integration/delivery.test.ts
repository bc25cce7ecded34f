// Delivery against a real imd: dedup by cid, an offline backlog over several sync pages, a slow
// consumer, groups.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { MemoryStore } from '../../src/index.js';
import { Imd, waitFor } from '../support/imd.js';
import { CountingSocket, connect, contiguous } from './helpers.js';

let imd: Imd;
before(async () => {
  imd = await Imd.start({ server: ['send_queue_bytes = 65536'] });
});
after(async () => {
  await imd.close();
});

test('the same cid sent twice is stored once', async () => {
  const alice = await connect(imd, 'ann');
  const bob = await connect(imd, 'ben');
  const a = await alice.client.send({ to: 'ben', body: 'hello', cid: 'fixed-cid-1' });
  const b = await alice.client.send({ to: 'ben', body: 'hello again', cid: 'fixed-cid-1' });
  assert.deepEqual(b, a);
  const other = await alice.client.send({ to: 'ben', body: 'next' });
  await waitFor('ben has the next one', () => bob.messages.some((m) => m.mid === other.mid));
  assert.deepEqual(bob.messages.map((m) => m.body), ['hello', 'next']);
  alice.client.disconnect();
  bob.client.disconnect();
});

test('250 messages received offline arrive once and in order across sync pages', async () => {
  const alice = await connect(imd, 'amy');
  const store = new MemoryStore();
  // bob logs in once (position saved), goes away, and 250 messages arrive meanwhile.
  const first = await connect(imd, 'bill', { store });
  const start = first.client.position.seq;
  first.client.disconnect();
  const sends = [];
  for (let i = 0; i < 250; i++) sends.push(alice.client.send({ to: 'bill', body: `m${i}` }));
  await Promise.all(sends);
  const frames = CountingSocket.frames.length;
  const bob = await connect(imd, 'bill', { store, syncLimit: 100 });
  await waitFor('250 messages', () => bob.messages.length >= 250);
  await new Promise((r) => setTimeout(r, 300));  // nothing more comes
  assert.equal(bob.messages.length, 250);
  assert.deepEqual(bob.messages.map((m) => m.body), sends.map((_, i) => `m${i}`));
  assert.ok(contiguous(bob.messages));
  assert.equal(bob.messages[0]!.seq, start + 1);
  const syncs = CountingSocket.frames.slice(frames).filter((f) => f.includes('"chat.sync"'));
  assert.ok(syncs.length >= 3, `${syncs.length} sync pages`);
  assert.equal(store.load('default/bill/web')?.seq, start + 250);
  alice.client.disconnect();
  bob.client.disconnect();
});

test('a slow consumer is closed 4004, backs off, resyncs: everything once, in order',
     async () => {
  const alice = await connect(imd, 'ada');
  const bob = await connect(imd, 'bo');
  const socket = CountingSocket.sockets.at(-1)!;
  // bob stops reading. The kernel's buffers hold a few MiB first (loopback autotunes the send
  // buffer up to 4 MiB), so 6 MB go out: past them, the server's send queue (64 KiB) fills.
  socket.pause();
  const count = 400;
  const body = 'x'.repeat(15000);
  const sends = [];
  for (let i = 0; i < count; i++) {
    sends.push(alice.client.send({ to: 'bo', body: `${i}:${body}` }));
  }
  await Promise.all(sends);
  socket.resume();
  await waitFor(`${count} messages`, () => bob.messages.length >= count, 60000);
  assert.equal(bob.messages.length, count);
  assert.deepEqual(bob.messages.map((m) => Number(m.body.split(':')[0])),
                   Array.from({ length: count }, (_, i) => i));
  assert.ok(contiguous(bob.messages));
  assert.equal(socket.closeCode, 4004);
  assert.ok(bob.states.filter((s) => s === 'ready').length >= 2, 'bob reconnected');
  alice.client.disconnect();
  bob.client.disconnect();
});

test('groups: create, join, send, members, info, quit', async () => {
  const alice = await connect(imd, 'gina');
  const bob = await connect(imd, 'gus');
  const g = await alice.client.createGroup('team', [], 'team-web-1');
  assert.equal(g.gid, 'team-web-1');
  assert.equal(g.owner, 'gina');
  await bob.client.joinGroup('team-web-1');
  const sent = await alice.client.send({ group: 'team-web-1', body: 'hi team' });
  await waitFor('gus gets it', () => bob.messages.some((m) => m.mid === sent.mid));
  const members = await bob.client.members('team-web-1');
  assert.deepEqual(members.members.map((m) => m.user), ['gina', 'gus']);
  assert.equal((await bob.client.groupInfo('team-web-1')).member_count, 2);
  await bob.client.quitGroup('team-web-1');
  await assert.rejects(bob.client.send({ group: 'team-web-1', body: 'x' }),
                       (e: { error: string }) => e.error === 'not_member');
  // Group events arrive as messages too: created, joined, then the text.
  assert.deepEqual(bob.messages.filter((m) => m.group).map((m) => m.type), ['system', 'text']);
  alice.client.disconnect();
  bob.client.disconnect();
});

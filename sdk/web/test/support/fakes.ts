// Fakes for the unit tests: a clock with timers that only move when told, a WebSocket that the
// test drives from the server's side, and helpers that play the server's part of a login.
import { ImClient, type ClientOptions } from '../../src/index.js';

export class FakeTimers {
  nowMs = 1_000_000;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.nowMs + Math.max(0, ms), fn });
    return id;
  };
  clearTimeout = (h: unknown): void => {
    this.timers.delete(h as number);
  };
  now = (): number => this.nowMs;
  /** The delays of the timers now armed, sorted. */
  pendingDelays(): number[] {
    return [...this.timers.values()].map((t) => t.at - this.nowMs).sort((a, b) => a - b);
  }
  /** Moves the clock, running each timer due on the way (and the promise jobs it starts). */
  async advance(ms: number): Promise<void> {
    const end = this.nowMs + ms;
    for (;;) {
      await settle();  // promise jobs run before any timer, as in a real event loop
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.nowMs = next[1].at;
      next[1].fn();
      await settle();
    }
    this.nowMs = end;
    await settle();
  }
}

/** Lets every queued promise job run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

type Frame = { id?: number; cmd: string; body?: Record<string, unknown> };

export class FakeSocket {
  readyState = 0;
  sent: Frame[] = [];
  closedByClient = false;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string) {}
  send(data: string): void {
    if (this.readyState !== 1) throw new Error('not open');
    this.sent.push(JSON.parse(data) as Frame);
  }
  close(): void {
    this.closedByClient = true;
    this.readyState = 3;
  }
  // The server's side:
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  push(frame: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  serverClose(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  /** The last request of `cmd` not answered yet by reply(). */
  last(cmd: string): Frame | undefined {
    return [...this.sent].reverse().find((f) => f.cmd === cmd && !this.answered.has(f.id ?? -1));
  }
  private readonly answered = new Set<number>();
  /** Answers the oldest request of `cmd` not answered yet. */
  reply(cmd: string, body?: Record<string, unknown>, error?: Record<string, unknown>): Frame {
    const f = this.sent.find((x) => x.cmd === cmd && !this.answered.has(x.id ?? -1));
    if (!f) throw new Error(`no ${cmd} request to answer; sent: ${JSON.stringify(this.sent)}`);
    this.answered.add(f.id as number);
    this.push(error ? { id: f.id, cmd, ...error }
                    : body === undefined ? { id: f.id, cmd, code: 0 }
                    : { id: f.id, cmd, code: 0, body });
    return f;
  }
  count(cmd: string): number {
    return this.sent.filter((f) => f.cmd === cmd).length;
  }
}

export function msg(seq: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { seq, mid: String(1000 + seq), from: 'bob', to: 'alice', type: 'text', body: `m${seq}`,
           ts: 1700000000000 + seq, ...extra };
}

export function loginBody(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { user: 'alice', tenant: 'default', session: 's', node: 'node-0', epoch: 'E1',
           last_seq: 0, acked_seq: 0, heartbeat_s: 30, server_ms: 1, ...over };
}

export function page(messages: Record<string, unknown>[], over: Record<string, unknown> = {}) {
  return { messages, epoch: 'E1', last_seq: messages.length ? messages.at(-1)!.seq : 0,
           first_seq: messages.length ? messages[0]!.seq : 0, more: false, gap: false, ...over };
}

export function makeClient(over: Partial<ClientOptions> = {}) {
  const sockets: FakeSocket[] = [];
  class Socket extends FakeSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  const timers = new FakeTimers();
  const win = new EventTarget();
  const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' });
  const client = new ImClient({
    url: 'ws://test/ws', token: 't1', WebSocket: Socket, timers, random: () => 0.5,
    window: win, document: doc, ...over,
  });
  const states: string[] = [];
  const messages: number[] = [];
  const errors: string[] = [];
  const gaps: string[] = [];
  const kicks: string[] = [];
  client.on('state', (s) => states.push(s.to));
  client.on('message', (m) => messages.push(m.seq));
  client.on('error', (e) => errors.push(e.error));
  client.on('gap', (g) => gaps.push(`${g.reason}@${g.after}`));
  client.on('kicked', (k) => kicks.push(`${k.reason}/${k.code}`));
  const sock = () => sockets.at(-1)!;
  /** Opens the newest socket and answers its login. */
  const logIn = async (loginOver: Record<string, unknown> = {}) => {
    await settle();
    sock().open();
    await settle();
    sock().reply('login', loginBody(loginOver));
    await settle();
  };
  /** Opens the newest socket and answers its login and one sync page. */
  const up = async (loginOver: Record<string, unknown> = {},
                    syncMessages: Record<string, unknown>[] = []) => {
    await logIn(loginOver);
    sock().reply('chat.sync', page(syncMessages, { epoch: loginOver.epoch ?? 'E1' }));
    await settle();
  };
  /** Runs the clock until a new socket is made (the reconnect delay has passed). */
  const reconnect = async () => {
    const n = sockets.length;
    for (let i = 0; i < 600 && sockets.length === n; i++) await timers.advance(100);
    if (sockets.length === n) throw new Error('no reconnect within 60 s');
  };
  /** The delay of the pending reconnect (the last timer armed). */
  return { client, timers, sockets, reconnect, logIn, win, doc, states, messages, errors, gaps, kicks, sock, up };
}

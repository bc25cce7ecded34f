import { backoffDelay, closeAction } from './backoff.js';
import { Delivery } from './delivery.js';
import { Emitter } from './emitter.js';
import { ImError, disconnectedError, timeoutError } from './errors.js';
import { MemoryStore, type PositionStore } from './store.js';
import { fetchRoute, type FetchLike } from './route.js';
import type {
  GroupInfo, ImMessage, LoginInfo, MemberPage, OutgoingMessage, SendReceipt, State,
} from './types.js';

/** The part of the WebSocket API the client uses (the browser's, or Node's `ws`). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type SocketFactory = new (url: string) => SocketLike;

interface EventTargetLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

export interface ClientOptions {
  /**
   * The WebSocket endpoint, e.g. "ws://127.0.0.1:7000/ws". Give this, `routeUrl` or
   * `routeEndpoint`; with `routeEndpoint` it is the fallback dialled after the gateways.
   */
  url?: string;
  /** Asked before every connection attempt for the endpoint (a router picking a live node). */
  routeUrl?: () => string | Promise<string>;
  /**
   * A GET /v1/route URL with its query, e.g.
   * "http://127.0.0.1:7000/v1/route?tenant=default&user=alice": asked before every connection
   * attempt (within connectTimeoutMs). The client dials the WebSocket gateways it answers in
   * order, then `url`: the first after a login, the next one after each attempt that failed.
   * When the request fails, `url` is dialled (without `url`, the attempt fails and is retried
   * with the usual backoff).
   */
  routeEndpoint?: string;
  /** The fetch used for `routeEndpoint`. Default: globalThis.fetch. */
  fetch?: FetchLike;
  /** A login token. Give this, `getToken`, or both. */
  token?: string;
  /** Asked when there is no token, and once after the server refused an expired one. */
  getToken?: () => string | Promise<string>;
  /** The device id (kick policy and acks are per device). Default "web". */
  device?: string;
  /** Where the delivery position is kept. Default: a MemoryStore. */
  store?: PositionStore;
  /** A request without an answer by then rejects with `timeout`. Default 10000. */
  requestTimeoutMs?: number;
  /** Open the socket and log in within this, else try again later. Default 10000. */
  connectTimeoutMs?: number;
  /** Reconnect backoff: first cap and largest delay. Defaults 500 and 20000. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** A connection up this long resets the backoff. Default 5000. */
  stableAfterMs?: number;
  /** The first retry after a drain (close 1001) waits a uniform draw below this. Default 2000. */
  drainJitterMs?: number;
  /** Sends waiting or in flight at most; one more rejects with `outbox_full`. Default 1000. */
  outboxLimit?: number;
  /** Sends on the wire at once. Default 32. */
  maxInFlight?: number;
  /** A send not stored by then rejects with `timeout` (0 = never). Default 60000. */
  sendTimeoutMs?: number;
  /** Ping period; 0 = the server's heartbeat_s. Default 0. */
  pingIntervalMs?: number;
  /** Messages held above a hole at most. Default 5000. */
  maxWaiting?: number;
  /** `chat.sync` page size (1..500). Default 200. */
  syncLimit?: number;
  /** A hole in the seqs that lasts this long is filled by a sync. Default 1000. */
  holeWaitMs?: number;
  /** Acks are sent this long after the last delivery. Default 500. */
  ackDelayMs?: number;
  /** The WebSocket class. Default: globalThis.WebSocket. */
  WebSocket?: SocketFactory;
  /** `online`/`pageshow` source and `visibilitychange` source. Default: window, document. */
  window?: EventTargetLike | null;
  document?: (EventTargetLike & { visibilityState?: string }) | null;
  /** For tests. */
  timers?: Timers;
  random?: () => number;
}

export interface ClientEvents {
  state: { from: State; to: State };
  message: ImMessage;
  gap: { reason: 'retention' | 'epoch'; after: number };
  kicked: { reason: string; code: number };
  error: ImError;
}

interface Pending {
  resolve: (body: Record<string, unknown>) => void;
  reject: (e: ImError) => void;
  timer: unknown;
}

interface OutboxItem {
  cid: string;
  body: Record<string, unknown>;
  message: OutgoingMessage;
  resolve: (r: SendReceipt) => void;
  reject: (e: ImError) => void;
  deadline: unknown;
  inFlight: boolean;
  notBefore: number;  // after a 429 or 503: not before this time
}

type Body = Record<string, unknown>;

const kMaxExtraDepth = 30;

function depth(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  let d = 0;
  for (const x of Object.values(v as object)) d = Math.max(d, depth(x));
  return d + 1;
}

function randomCid(device: string): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return `${device.slice(0, 16)}-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

function toMessage(b: Body): ImMessage {
  const m: ImMessage = {
    seq: Number(b.seq), mid: String(b.mid), from: String(b.from ?? ''),
    type: String(b.type ?? 'text'), body: String(b.body ?? ''), ts: Number(b.ts),
  };
  if (typeof b.to === 'string') m.to = b.to;
  if (typeof b.group === 'string') m.group = b.group;
  if (b.extra && typeof b.extra === 'object') m.extra = b.extra as Record<string, unknown>;
  return m;
}

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
};

/**
 * A browser client of the libim wire protocol (docs/protocol.md) over WebSocket: connection
 * state, reconnect with backoff, login, resync from a stored position, an outbox of sends that
 * survive disconnects under one cid each, and group calls. See README.md.
 *
 * Every callback of a socket carries the generation it was opened for; a callback of an older
 * socket returns at once, so a dying socket never touches the state of its successor.
 */
export class ImClient {
  private readonly o: Required<Omit<ClientOptions,
    'url' | 'routeUrl' | 'routeEndpoint' | 'fetch' | 'token' | 'getToken' | 'window' |
    'document'>> & ClientOptions;
  private readonly events: Emitter<ClientEvents>;
  private readonly timers: Timers;
  private stateValue: State = 'disconnected';
  private wanted = false;  // connect() called and no terminal close since
  private gen = 0;         // the current socket's generation
  private ws: SocketLike | null = null;
  private loggedIn = false;
  private token: string | undefined;
  private tokenAsked = false;  // a fresh token was asked for since the last login
  private attempt = 0;
  private routeTries = 0;  // attempts through routeEndpoint since the last login
  private upSince = 0;
  private kickReason = '';
  private retryTimer: unknown = null;
  private connectTimer: unknown = null;
  private pingTimer: unknown = null;
  private holeTimer: unknown = null;
  private ackTimer: unknown = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly outbox: OutboxItem[] = [];
  private flushTimer: unknown = null;
  private readonly delivery: Delivery;
  private held: ImMessage[] = [];  // pushes that came before the login's sync finished
  private syncing = false;
  private syncLimit: number;  // halved after each 4004, grown back after each full sync
  private acked = 0;
  private storeKey = '';
  private session: LoginInfo | null = null;
  private lastRx = 0;
  private readonly readyWaiters = new Set<{ resolve: () => void; reject: (e: ImError) => void }>();
  private readonly wake = () => this.retryNow();
  private readonly onVisibility = () => {
    if (this.o.document?.visibilityState !== 'hidden') this.retryNow();
  };

  constructor(options: ClientOptions) {
    if (!options.url && !options.routeUrl && !options.routeEndpoint) {
      throw new TypeError('ImClient needs url, routeUrl or routeEndpoint');
    }
    if (!options.token && !options.getToken) {
      throw new TypeError('ImClient needs token or getToken');
    }
    const g = globalThis as unknown as { window?: EventTargetLike; document?: EventTargetLike };
    this.o = {
      device: 'web', store: new MemoryStore(), requestTimeoutMs: 10000, connectTimeoutMs: 10000,
      reconnectMinMs: 500, reconnectMaxMs: 20000, stableAfterMs: 5000, drainJitterMs: 2000,
      outboxLimit: 1000, maxInFlight: 32, sendTimeoutMs: 60000, pingIntervalMs: 0,
      maxWaiting: 5000, syncLimit: 200, holeWaitMs: 1000, ackDelayMs: 500,
      WebSocket: (globalThis as unknown as { WebSocket: SocketFactory }).WebSocket,
      timers: defaultTimers, random: Math.random,
      window: g.window ?? null, document: g.document ?? null,
      ...options,
    };
    this.timers = this.o.timers;
    this.token = options.token;
    this.delivery = new Delivery(this.o.maxWaiting);
    this.syncLimit = this.o.syncLimit;
    this.events = new Emitter<ClientEvents>((error, event) => {
      if (event !== 'error') this.fail(new ImError(0, 'listener', String(error)));
    });
  }

  /** The connection state. */
  get state(): State {
    return this.stateValue;
  }

  /** The last login's answer (null before the first login). */
  get loginInfo(): LoginInfo | null {
    return this.session;
  }

  /** The delivery position: the last seq handed to `message` listeners, and its epoch. */
  get position(): { epoch: string | null; seq: number } {
    return { epoch: this.delivery.epoch, seq: this.delivery.seq };
  }

  on<K extends keyof ClientEvents>(event: K, fn: (v: ClientEvents[K]) => void): () => void {
    return this.events.on(event, fn);
  }
  off<K extends keyof ClientEvents>(event: K, fn: (v: ClientEvents[K]) => void): void {
    this.events.off(event, fn);
  }

  /** Starts connecting (and keeps the connection up). Idempotent. */
  connect(): void {
    if (this.wanted) return;
    this.wanted = true;
    this.attempt = 0;
    this.tokenAsked = false;
    this.o.window?.addEventListener('online', this.wake);
    this.o.window?.addEventListener('pageshow', this.wake);
    this.o.document?.addEventListener('visibilitychange', this.onVisibility);
    void this.open();
  }

  /** Closes for good: pending requests and queued sends reject with `disconnected`. */
  disconnect(): void {
    this.stop();
    for (const item of this.outbox.splice(0)) this.settle(item, disconnectedError());
  }

  /** Logs out (the server forgets the session), then disconnects. */
  async logout(): Promise<void> {
    try {
      if (this.loggedIn) await this.request('logout', undefined);
    } finally {
      this.disconnect();
    }
  }

  /** Resolves once the client is `ready`; rejects after `timeoutMs` or when it stops. */
  ready(timeoutMs = this.o.requestTimeoutMs): Promise<void> {
    if (this.stateValue === 'ready') return Promise.resolve();
    if (!this.wanted) return Promise.reject(new ImError(0, 'stopped', 'the client is stopped'));
    return new Promise((resolve, reject) => {
      const w = {
        resolve: () => { this.timers.clearTimeout(t); resolve(); },
        reject: (e: ImError) => { this.timers.clearTimeout(t); reject(e); },
      };
      const t = this.timers.setTimeout(() => {
        this.readyWaiters.delete(w);
        reject(new ImError(504, 'timeout', `not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      this.readyWaiters.add(w);
    });
  }

  /**
   * Sends a message: queued at once (the outbox is bounded), written once logged in and synced,
   * and sent again under the same cid after a timeout, a disconnect, or a 429 or 503, until it
   * is stored or `sendTimeoutMs` passes. The message comes back through `message` too, in seq
   * order.
   */
  send(message: OutgoingMessage): Promise<SendReceipt> {
    const bad = (why: string) => Promise.reject(new ImError(400, 'bad_request', why));
    if (!message.to === !message.group) return bad('give exactly one of to and group');
    if (typeof message.body !== 'string') return bad('body must be a string');
    if (message.extra !== undefined) {
      if (message.extra === null || typeof message.extra !== 'object' ||
          Array.isArray(message.extra)) {
        return bad('extra must be an object');
      }
      // The server answers a frame nested too deep without an id: refuse it here instead.
      if (depth(message.extra) > kMaxExtraDepth) {
        return bad(`extra may nest at most ${kMaxExtraDepth} levels`);
      }
    }
    if (this.outbox.length >= this.o.outboxLimit) {
      return Promise.reject(new ImError(429, 'outbox_full',
                                        `${this.o.outboxLimit} sends are waiting already`));
    }
    const cid = message.cid ?? randomCid(this.o.device);
    const body: Body = message.group ? { group: message.group } : { to: message.to };
    Object.assign(body, { cid, type: message.type ?? 'text', body: message.body });
    if (message.extra) body.extra = message.extra;
    return new Promise<SendReceipt>((resolve, reject) => {
      const item: OutboxItem = {
        cid, body, message, resolve, reject, deadline: null, inFlight: false, notBefore: 0,
      };
      if (this.o.sendTimeoutMs > 0) {
        item.deadline = this.timers.setTimeout(() => {
          const e = timeoutError('chat.send');
          e.message = `not stored within ${this.o.sendTimeoutMs} ms; it may be later: send again ` +
                      'with the same cid';
          this.settle(item, e);
        }, this.o.sendTimeoutMs);
      }
      this.outbox.push(item);
      this.flush();
    });
  }

  createGroup(name: string, members: string[] = [], gid?: string): Promise<GroupInfo> {
    const body: Body = { name, members };
    if (gid !== undefined) body.gid = gid;
    return this.call('group.create', body) as Promise<unknown> as Promise<GroupInfo>;
  }
  async joinGroup(gid: string): Promise<void> {
    await this.call('group.join', { gid });
  }
  async quitGroup(gid: string): Promise<void> {
    await this.call('group.quit', { gid });
  }
  groupInfo(gid: string): Promise<GroupInfo> {
    return this.call('group.info', { gid }) as Promise<unknown> as Promise<GroupInfo>;
  }
  members(gid: string, page: { after?: string; limit?: number } = {}): Promise<MemberPage> {
    return this.call('group.members', { gid, ...page }) as Promise<unknown> as Promise<MemberPage>;
  }

  // --- connection -----------------------------------------------------------------------

  private setState(to: State): void {
    const from = this.stateValue;
    if (from === to) return;
    this.stateValue = to;
    this.events.emit('state', { from, to });
    if (to === 'ready') {
      for (const w of [...this.readyWaiters]) w.resolve();
      this.readyWaiters.clear();
    }
  }

  /** The endpoint of this attempt through `routeEndpoint`: its gateways in turn, then `url`. */
  private async routed(): Promise<string> {
    let candidates: string[] = [];
    try {
      const fetchFn = this.o.fetch ?? (globalThis.fetch as unknown as FetchLike | undefined);
      if (!fetchFn) throw new Error('no fetch: give the fetch option');
      candidates = await fetchRoute(this.o.routeEndpoint as string, fetchFn,
                                    this.o.connectTimeoutMs, this.timers);
    } catch (e) {
      if (!this.o.url) throw e;
    }
    if (this.o.url && !candidates.includes(this.o.url)) candidates.push(this.o.url);
    if (candidates.length === 0) throw new Error('the route endpoint answered no WebSocket gateway');
    return candidates[this.routeTries++ % candidates.length] as string;
  }

  private fail(e: ImError): void {
    this.events.emit('error', e);
  }

  private async open(): Promise<void> {
    this.clearTimer('retryTimer');
    const g = ++this.gen;
    this.setState('connecting');
    // Everything below may wait: a newer attempt or a stop makes this one stale.
    const stale = () => g !== this.gen || !this.wanted;
    let url: string;
    try {
      url = this.o.routeUrl ? await this.o.routeUrl()
          : this.o.routeEndpoint ? await this.routed()
          : (this.o.url as string);
      if (!this.token && this.o.getToken) this.token = await this.o.getToken();
    } catch (e) {
      if (stale()) return;
      this.fail(new ImError(0, 'connect_failed',
                            `routeUrl, routeEndpoint or getToken failed: ${String(e)}`));
      return this.lost(g, 1006, 'connect failed');
    }
    if (stale()) return;
    let ws: SocketLike;
    try {
      ws = new this.o.WebSocket(url);
    } catch (e) {
      this.fail(new ImError(0, 'connect_failed', String(e)));
      return this.lost(g, 1006, 'bad url');
    }
    this.ws = ws;
    this.kickReason = '';
    this.connectTimer = this.timers.setTimeout(() => this.drop(g, 4000, 'connect timeout'),
                                               this.o.connectTimeoutMs);
    ws.onopen = () => {
      if (g === this.gen) void this.logIn(g);
    };
    ws.onmessage = (ev) => {
      if (g === this.gen) this.onText(ev.data);
    };
    ws.onclose = (ev) => this.lost(g, ev.code, ev.reason);
    ws.onerror = () => {};  // a close event follows
  }

  private async logIn(g: number): Promise<void> {
    for (;;) {
      let info: LoginInfo;
      try {
        const body = await this.request('login', { token: this.token, device: this.o.device }, g);
        info = body as unknown as LoginInfo;
      } catch (e) {
        if (g !== this.gen) return;
        const err = e as ImError;
        if (err.code === 401 && this.o.getToken && !this.tokenAsked) {
          this.tokenAsked = true;  // the connection stays open after a refused login
          try {
            this.token = await this.o.getToken();
          } catch (te) {
            this.fail(new ImError(401, err.error, `getToken failed: ${String(te)}`));
            return this.terminal(g, err.error, 4002);
          }
          if (g !== this.gen) return;
          continue;
        }
        this.fail(err);
        if (err.code === 401) return this.terminal(g, err.error, 4002);
        return this.drop(g, 4000, `login refused: ${err.error}`, err.retryAfterMs);
      }
      if (g !== this.gen) return;
      this.clearTimer('connectTimer');
      this.loggedIn = true;
      this.tokenAsked = false;
      this.upSince = this.timers.now();
      this.session = info;
      this.setState('syncing');
      await this.startSession(g, info);
      return;
    }
  }

  private async startSession(g: number, info: LoginInfo): Promise<void> {
    const key = `${info.tenant}/${info.user}/${this.o.device}`;
    if (key !== this.storeKey || this.delivery.epoch === null) {
      this.storeKey = key;
      let saved = null;
      try {
        saved = await this.o.store.load(key);
      } catch (e) {
        this.fail(new ImError(0, 'store', `position store: ${String(e)}`));
      }
      if (g !== this.gen) return;
      if (saved) this.delivery.reset(saved.epoch, saved.seq);
      else this.delivery.reset(info.epoch, Number(info.acked_seq));
      this.acked = 0;
    }
    if (this.delivery.epoch !== info.epoch) this.epochChanged(info.epoch);
    this.schedulePing(g, Number(info.heartbeat_s) * 1000);
    if (!(await this.sync(g))) return;
    this.routeTries = 0;
    this.setState('ready');
    this.flush();
  }

  private epochChanged(epoch: string): void {
    this.delivery.reset(epoch, 0);
    this.acked = 0;
    this.events.emit('gap', { reason: 'epoch', after: 0 });
  }

  /** Pages chat.sync from the position until `more` is false, then delivers held pushes. */
  private async sync(g: number): Promise<boolean> {
    this.syncing = true;
    try {
      for (;;) {
        const page = await this.request('chat.sync',
                                        { after: this.delivery.seq, limit: this.syncLimit }, g);
        if (g !== this.gen) return false;
        if (page.epoch !== this.delivery.epoch) {
          this.epochChanged(String(page.epoch));
          continue;
        }
        if (page.gap) {
          this.events.emit('gap', { reason: 'retention', after: this.delivery.seq });
          const first = Number(page.first_seq);
          this.delivery.skipTo(first > 0 ? first - 1 : Number(page.last_seq));
        }
        for (const m of page.messages as Body[]) this.delivery.offer(toMessage(m));
        this.deliver();
        if (!page.more) break;
      }
      this.syncing = false;
      this.syncLimit = Math.min(this.o.syncLimit, this.syncLimit * 2);
      for (const m of this.held.splice(0)) this.delivery.offer(m);
      this.deliver();
      return true;
    } catch (e) {
      if (g === this.gen) this.drop(g, 4000, `sync failed: ${(e as ImError).error}`);
      return false;
    } finally {
      if (g === this.gen) this.syncing = false;
    }
  }

  private deliver(): void {
    const out = this.delivery.drain();
    if (out.length > 0) {
      for (const m of out) this.events.emit('message', m);
      const pos = { epoch: this.delivery.epoch as string, seq: this.delivery.seq };
      try {
        const saved = this.o.store.save(this.storeKey, pos);
        if (saved) saved.catch((e) => this.fail(new ImError(0, 'store', String(e))));
      } catch (e) {
        this.fail(new ImError(0, 'store', `position store: ${String(e)}`));
      }
      this.scheduleAck();
    }
    this.clearTimer('holeTimer');
    if (this.delivery.hasHole && !this.syncing) {
      const g = this.gen;
      this.holeTimer = this.timers.setTimeout(() => {
        this.holeTimer = null;
        if (g === this.gen && this.stateValue === 'ready' && this.delivery.hasHole &&
            !this.syncing) {
          void this.sync(g);
        }
      }, this.o.holeWaitMs);
    }
  }

  private scheduleAck(): void {
    if (this.ackTimer !== null) return;
    this.ackTimer = this.timers.setTimeout(() => {
      this.ackTimer = null;
      const seq = this.delivery.seq;
      if (!this.loggedIn || seq <= this.acked) return;
      this.request('chat.ack', { seq }).then(() => {
        this.acked = Math.max(this.acked, seq);
      }, () => {});  // the next delivery or login acks again
    }, this.o.ackDelayMs);
  }

  /** Liveness: a ping every period, answered or the socket is given up. Judged on traffic
   *  received, so a timer that a background tab fired late never condemns a live socket. */
  private schedulePing(g: number, heartbeatMs: number): void {
    const every = this.o.pingIntervalMs > 0 ? this.o.pingIntervalMs : heartbeatMs || 30000;
    this.clearTimer('pingTimer');
    this.pingTimer = this.timers.setTimeout(() => {
      this.pingTimer = null;
      if (g !== this.gen) return;
      this.probe(g);
      this.schedulePing(g, heartbeatMs);
    }, every);
  }

  /** Sends a ping; without an answer in time and with nothing else heard since, drops. */
  private probe(g: number): void {
    const sent = this.timers.now();
    this.request('ping', undefined, g).catch((e: ImError) => {
      if (g !== this.gen || e.error !== 'timeout') return;
      if (this.lastRx >= sent) return;  // frames arrived: the socket lives, the answer is late
      this.drop(g, 4000, 'no answer to ping');
    });
  }

  /** A browser signal (online, pageshow, visible): retry now, or check a live socket. */
  private retryNow(): void {
    if (!this.wanted) return;
    if (this.retryTimer !== null) {
      void this.open();
    } else if (this.loggedIn) {
      this.probe(this.gen);
    }
  }

  /** Gives up socket `g` now, without waiting for its close event. */
  private drop(g: number, code: number, reason: string, waitMs?: number): void {
    if (g !== this.gen) return;
    const ws = this.ws;
    this.lost(g, code, reason, waitMs);
    try {
      ws?.close(1000, reason.slice(0, 100));
    } catch {
      // already closing
    }
  }

  /** Stops for good after a refused login: `reason` is the refusal's error name. */
  private terminal(g: number, reason: string, code: number): void {
    if (g !== this.gen) return;
    const ws = this.ws;
    this.events.emit('kicked', { reason, code });
    this.stop();
    try {
      ws?.close(1000, 'stopped');
    } catch {
      // already closing
    }
  }

  /** The end of socket `g`, by its close event or by drop(): decides what comes next. */
  private lost(g: number, code: number, reason: string, waitMs?: number): void {
    if (g !== this.gen) return;  // a stale socket's close: its successor is not touched
    this.gen++;
    const wasUpFor = this.loggedIn ? this.timers.now() - this.upSince : 0;
    this.teardown();
    if (!this.wanted) return;
    const action = closeAction(code, reason, this.o.getToken !== undefined, this.tokenAsked);
    if (action.kind === 'stop') {
      if (action.why !== 'logout') {
        this.events.emit('kicked', {
          reason: this.kickReason || (action.why === 'token' ? 'token_expired' : 'kicked'), code,
        });
      }
      this.stop();
      return;
    }
    if (action.kind === 'token') {
      this.tokenAsked = true;
      this.token = undefined;  // open() asks getToken
      this.retryTimer = this.timers.setTimeout(() => void this.open(), 0);
      return;
    }
    if (wasUpFor >= this.o.stableAfterMs && action.delay !== 'slow') this.attempt = 0;
    // A sync page larger than the server's send queue would close every resync with 4004 again.
    if (action.delay === 'slow') this.syncLimit = Math.max(1, Math.floor(this.syncLimit / 2));
    let delay = backoffDelay(this.attempt++, this.o.reconnectMinMs, this.o.reconnectMaxMs,
                             this.o.random);
    if (action.delay === 'drain' && this.attempt === 1) {
      delay = Math.floor(this.o.random() * this.o.drainJitterMs);
    }
    if (waitMs !== undefined) delay = Math.max(delay, waitMs);
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      void this.open();
    }, delay);
  }

  /** Forgets the socket: rejects its requests, returns in-flight sends to the queue. */
  private teardown(): void {
    this.ws = null;
    this.loggedIn = false;
    this.syncing = false;
    this.held = [];
    for (const name of ['connectTimer', 'pingTimer', 'holeTimer', 'ackTimer', 'flushTimer'] as const) {
      this.clearTimer(name);
    }
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      this.timers.clearTimeout(p.timer);
      p.reject(disconnectedError());
    }
    for (const item of this.outbox) item.inFlight = false;
    this.setState('disconnected');
  }

  private stop(): void {
    this.wanted = false;
    this.gen++;
    const ws = this.ws;
    this.teardown();
    this.clearTimer('retryTimer');
    try {
      ws?.close(1000, 'client closed');
    } catch {
      // already closing
    }
    this.o.window?.removeEventListener('online', this.wake);
    this.o.window?.removeEventListener('pageshow', this.wake);
    this.o.document?.removeEventListener('visibilitychange', this.onVisibility);
    for (const w of [...this.readyWaiters]) w.reject(new ImError(0, 'stopped', 'client stopped'));
    this.readyWaiters.clear();
  }

  private clearTimer(name: 'retryTimer' | 'connectTimer' | 'pingTimer' | 'holeTimer' |
                     'ackTimer' | 'flushTimer'): void {
    if (this[name] !== null) this.timers.clearTimeout(this[name]);
    this[name] = null;
  }

  // --- frames and requests -------------------------------------------------------------

  private onText(data: unknown): void {
    this.lastRx = this.timers.now();
    let f: Body;
    try {
      f = JSON.parse(String(data)) as Body;
    } catch {
      return this.fail(new ImError(0, 'bad_frame', 'the server sent a frame that is not JSON'));
    }
    if (f === null || typeof f !== 'object') return;
    if (f.code !== undefined) {
      const p = typeof f.id === 'number' ? this.pending.get(f.id) : undefined;
      if (!p) {
        if (f.code !== 0) {
          this.fail(new ImError(Number(f.code), String(f.error ?? ''), String(f.message ?? '')));
        }
        return;
      }
      this.pending.delete(f.id as number);
      this.timers.clearTimeout(p.timer);
      if (f.code === 0) {
        p.resolve((f.body ?? {}) as Body);
      } else {
        const after = typeof f.retry_after_ms === 'number' ? f.retry_after_ms : undefined;
        p.reject(new ImError(Number(f.code), String(f.error ?? ''), String(f.message ?? ''),
                             after));
      }
      return;
    }
    const body = (f.body ?? {}) as Body;
    if (f.cmd === 'chat.message') {
      const m = toMessage(body);
      if (this.syncing || this.stateValue !== 'ready') {
        // Held until the sync is done; bounded: what overflows is fetched by the next sync.
        if (this.held.length < this.o.maxWaiting) this.held.push(m);
        return;
      }
      this.delivery.offer(m);
      this.deliver();
    } else if (f.cmd === 'session.kicked') {
      this.kickReason = String(body.reason ?? '');
    }
  }

  /** One request on socket `g` (default: the current one); rejects, never hangs. */
  private request(cmd: string, body: Body | undefined, g = this.gen): Promise<Body> {
    const ws = this.ws;
    if (g !== this.gen || !ws || ws.readyState !== 1) return Promise.reject(disconnectedError());
    if (this.nextId > 0xffffffff) this.nextId = 1;  // ids are uint32
    const id = this.nextId++;
    return new Promise<Body>((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        if (this.pending.delete(id)) reject(timeoutError(cmd));
      }, this.o.requestTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      const frame: Body = { id, cmd };
      if (body !== undefined) frame.body = body;
      try {
        ws.send(JSON.stringify(frame));
      } catch {
        this.pending.delete(id);
        this.timers.clearTimeout(timer);
        reject(disconnectedError());
      }
    });
  }

  /** A command that needs a session: waits for `ready` (bounded), then asks. */
  private async call(cmd: string, body: Body): Promise<Body> {
    if (!this.loggedIn) await this.ready(this.o.requestTimeoutMs);
    return this.request(cmd, body);
  }

  // --- the outbox ----------------------------------------------------------------------

  private flush(): void {
    if (this.stateValue !== 'ready') return;
    const now = this.timers.now();
    let inFlight = this.outbox.filter((i) => i.inFlight).length;
    let wakeAt = Infinity;
    for (const item of this.outbox) {
      if (inFlight >= this.o.maxInFlight) break;
      if (item.inFlight) continue;
      if (item.notBefore > now) {
        wakeAt = Math.min(wakeAt, item.notBefore);
        continue;
      }
      item.inFlight = true;
      inFlight++;
      void this.sendItem(item, this.gen);
    }
    if (wakeAt !== Infinity && this.flushTimer === null) {
      this.flushTimer = this.timers.setTimeout(() => {
        this.flushTimer = null;
        this.flush();
      }, wakeAt - now);
    }
  }

  private async sendItem(item: OutboxItem, g: number): Promise<void> {
    try {
      const r = await this.request('chat.send', item.body, g);
      const receipt: SendReceipt = { mid: String(r.mid), seq: Number(r.seq), ts: Number(r.ts) };
      if (g === this.gen && this.session) {
        // Our own message has a seq in our inbox but no push: it fills its place here.
        const m = item.message;
        const own: ImMessage = {
          seq: receipt.seq, mid: receipt.mid, from: this.session.user,
          type: m.type ?? 'text', body: m.body, ts: receipt.ts,
        };
        if (m.to !== undefined) own.to = m.to;
        if (m.group !== undefined) own.group = m.group;
        if (m.extra !== undefined) own.extra = m.extra;
        if (this.syncing) this.held.push(own);
        else if (this.delivery.offer(own)) this.deliver();
      }
      this.settle(item, null, receipt);
    } catch (e) {
      const err = e as ImError;
      if (!this.outbox.includes(item)) return;  // settled meanwhile (deadline)
      item.inFlight = false;
      if (err.error === 'disconnected') return;  // sent again after the next login
      if (err.error === 'timeout' || err.code === 429 || err.code === 503) {
        // Same cid again: the server stores it once however often it arrives.
        const wait = err.retryAfterMs ?? (err.error === 'timeout' ? 0 : this.o.reconnectMinMs);
        item.notBefore = this.timers.now() + wait;
        if (g === this.gen) this.flush();
        return;
      }
      this.settle(item, err);
    }
    if (g === this.gen) this.flush();
  }

  private settle(item: OutboxItem, error: ImError | null, receipt?: SendReceipt): void {
    const i = this.outbox.indexOf(item);
    if (i < 0) return;
    this.outbox.splice(i, 1);
    this.timers.clearTimeout(item.deadline);
    if (error) {
      error.cid = item.cid;
      item.reject(error);
    } else {
      item.resolve(receipt as SendReceipt);
    }
  }
}

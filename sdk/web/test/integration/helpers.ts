import WebSocket from 'ws';

import { ImClient, MemoryStore, type ClientOptions, type ImMessage, type SocketFactory }
  from '../../src/index.js';
import type { Imd } from '../support/imd.js';

/** ws with a record of every frame the client wrote and every socket made. */
export class CountingSocket extends WebSocket {
  static frames: string[] = [];
  static sockets: CountingSocket[] = [];
  closeCode = 0;
  constructor(url: string) {
    super(url);
    CountingSocket.sockets.push(this);
    this.on('close', (code: number) => {
      this.closeCode = code;
    });
  }
  override send(data: unknown, ...rest: unknown[]): void {
    CountingSocket.frames.push(String(data));
    (super.send as (...a: unknown[]) => void)(data, ...rest);
  }
}

export interface Probe {
  client: ImClient;
  messages: ImMessage[];
  states: string[];
  kicks: string[];
  errors: string[];
  gaps: string[];
}

export async function connect(imd: Imd, user: string, options: Partial<ClientOptions> = {},
                              { wait = true } = {}): Promise<Probe> {
  const client = new ImClient({
    url: imd.wsUrl, token: await imd.token(user), device: 'web', store: new MemoryStore(),
    WebSocket: CountingSocket as unknown as SocketFactory, reconnectMinMs: 100,
    reconnectMaxMs: 1000, ...options,
  });
  const p: Probe = { client, messages: [], states: [], kicks: [], errors: [], gaps: [] };
  client.on('message', (m) => p.messages.push(m));
  client.on('state', (s) => p.states.push(s.to));
  client.on('kicked', (k) => p.kicks.push(`${k.reason}/${k.code}`));
  client.on('error', (e) => p.errors.push(e.error));
  client.on('gap', (g) => p.gaps.push(g.reason));
  client.connect();
  if (wait) await client.ready(20000);
  return p;
}

/** Seqs strictly increasing by one from the first: once each, in order, nothing missing. */
export function contiguous(messages: ImMessage[]): boolean {
  return messages.every((m, i) => i === 0 || m.seq === messages[i - 1]!.seq + 1);
}

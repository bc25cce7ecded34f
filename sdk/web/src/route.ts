// GET /v1/route (docs/protocol.md section 11): the gateways a client of one user should dial,
// best first. The client asks it before every connection attempt when `routeEndpoint` is set.
import type { Timers } from './client.js';

/** The part of `fetch` the client uses (globalThis.fetch fits). */
export type FetchLike = (
  url: string,
  init: { signal?: AbortSignal; headers?: Record<string, string> },
) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;

/** The most gateways taken from one answer (the server answers at most 64). */
export const kMaxRouteGateways = 8;

/**
 * The WebSocket addresses (`ws://` or `wss://`) of a route answer's `gateways`, in order, at
 * most kMaxRouteGateways; gateways without one are skipped.
 */
export function routeGateways(answer: unknown): string[] {
  const out: string[] = [];
  const gateways = (answer as { gateways?: unknown } | null)?.gateways;
  if (!Array.isArray(gateways)) return out;
  for (const g of gateways) {
    if (out.length === kMaxRouteGateways) break;
    const ws = (g as { ws?: unknown } | null)?.ws;
    if (typeof ws === 'string' && /^wss?:\/\//.test(ws)) out.push(ws);
  }
  return out;
}

/**
 * Asks `endpoint` (a GET /v1/route URL with its query) within `timeoutMs`: its WebSocket
 * gateways, in order. Rejects when the request fails, times out or is not answered 200.
 */
export async function fetchRoute(endpoint: string, fetchFn: FetchLike, timeoutMs: number,
                                 timers: Timers): Promise<string[]> {
  const abort = new AbortController();
  const timer = timers.setTimeout(() => abort.abort(), timeoutMs);
  try {
    const r = await fetchFn(endpoint, {
      signal: abort.signal, headers: { Accept: 'application/json' },
    });
    if (!r.ok) throw new Error(`route endpoint answered HTTP ${r.status}`);
    return routeGateways(await r.json());
  } finally {
    timers.clearTimeout(timer);
  }
}

/**
 * Reconnect delays: exponential with full jitter (a uniform draw below the exponential cap, as
 * centrifuge-js and the AWS analysis recommend), so clients dropped together do not return
 * together.
 */
export function backoffDelay(step: number, minMs: number, maxMs: number,
                             random: () => number): number {
  const cap = Math.min(maxMs, minMs * 2 ** Math.min(step, 31));
  return Math.min(maxMs, minMs + Math.floor(random() * cap));
}

/** What the client does after a connection ended. */
export type CloseAction =
  | { kind: 'stop'; why: 'kicked' | 'logout' | 'token' }
  | { kind: 'token' }
  | { kind: 'retry'; delay: 'backoff' | 'drain' | 'slow' };

/**
 * The close-code table (docs/protocol.md section 5; README "Close codes"). `tokenAsked` is true
 * when a fresh token was already asked for since the last successful login.
 */
export function closeAction(code: number, reason: string, canRefresh: boolean,
                            tokenAsked: boolean): CloseAction {
  if (code === 4001) return { kind: 'stop', why: 'kicked' };
  if (code === 4002) {
    return canRefresh && !tokenAsked ? { kind: 'token' } : { kind: 'stop', why: 'token' };
  }
  if (code === 1000 && reason === 'logout') return { kind: 'stop', why: 'logout' };
  if (code === 1001) return { kind: 'retry', delay: 'drain' };
  if (code === 4004) return { kind: 'retry', delay: 'slow' };
  return { kind: 'retry', delay: 'backoff' };
}

/** Where a device stands in its inbox: the epoch and the last seq delivered in order. */
export interface Position {
  epoch: string;
  seq: number;
}

/**
 * Keeps positions across sessions. `key` is `tenant/user/device`. Either method may return a
 * promise. A failing store is reported through the client's `error` event; delivery goes on.
 */
export interface PositionStore {
  load(key: string): Position | null | Promise<Position | null>;
  save(key: string, position: Position): void | Promise<void>;
}

/** The default: positions live as long as the page (a reload starts from the server's ack). */
export class MemoryStore implements PositionStore {
  private readonly map = new Map<string, Position>();
  load(key: string): Position | null {
    return this.map.get(key) ?? null;
  }
  save(key: string, position: Position): void {
    this.map.set(key, { ...position });
  }
}

interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** Positions in `localStorage` (or any Storage), under `prefix + key`. */
export class LocalStorageStore implements PositionStore {
  constructor(private readonly storage: StorageLike = (globalThis as unknown as {
    localStorage: StorageLike;
  }).localStorage, private readonly prefix = 'libim.position.') {}

  load(key: string): Position | null {
    const text = this.storage.getItem(this.prefix + key);
    if (!text) return null;
    try {
      const p = JSON.parse(text) as Partial<Position>;
      return typeof p.epoch === 'string' && Number.isSafeInteger(p.seq) && (p.seq as number) >= 0
        ? { epoch: p.epoch, seq: p.seq as number }
        : null;
    } catch {
      return null;  // a damaged entry: start over from the server's ack
    }
  }
  save(key: string, position: Position): void {
    this.storage.setItem(this.prefix + key, JSON.stringify(position));
  }
}

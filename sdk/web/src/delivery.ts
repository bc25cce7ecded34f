import type { ImMessage } from './types.js';

/**
 * The delivery position of one inbox: `seq` is the last seq handed to the application, every
 * seq up to it was handed over exactly once and in order. Messages above `seq + 1` wait in a
 * bounded map until the hole below them is filled (by a push, a send receipt or a sync).
 */
export class Delivery {
  epoch: string | null = null;
  seq = 0;
  private readonly waiting = new Map<number, ImMessage>();

  /** `maxWaiting`: messages held above a hole; beyond it the highest are dropped (a sync
   *  fetches them again). */
  constructor(private readonly maxWaiting: number) {}

  reset(epoch: string, seq: number): void {
    this.epoch = epoch;
    this.seq = seq;
    this.waiting.clear();
  }

  /** Takes a message; false when it is a duplicate (seq already delivered or waiting). */
  offer(m: ImMessage): boolean {
    if (m.seq <= this.seq || this.waiting.has(m.seq)) return false;
    this.waiting.set(m.seq, m);
    if (this.waiting.size > this.maxWaiting) {
      this.waiting.delete(Math.max(...this.waiting.keys()));
    }
    return true;
  }

  /** Entries up to `seq` are gone for good (retention): continue after them. */
  skipTo(seq: number): void {
    if (seq <= this.seq) return;
    this.seq = seq;
    for (const s of [...this.waiting.keys()]) if (s <= seq) this.waiting.delete(s);
  }

  /** The messages now deliverable, in order; the position moves past them. */
  drain(): ImMessage[] {
    const out: ImMessage[] = [];
    for (let m = this.waiting.get(this.seq + 1); m; m = this.waiting.get(this.seq + 1)) {
      this.waiting.delete(m.seq);
      this.seq = m.seq;
      out.push(m);
    }
    return out;
  }

  /** True when messages wait above a hole. */
  get hasHole(): boolean {
    return this.waiting.size > 0;
  }
}

/** A small typed event emitter; a listener that throws is reported to `onListenerError`. */
export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<(value: never) => void>>();

  constructor(private readonly onListenerError: (error: unknown, event: keyof Events) => void) {}

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (value: never) => void);
    return () => this.off(event, listener);
  }

  off<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): void {
    this.listeners.get(event)?.delete(listener as (value: never) => void);
  }

  emit<K extends keyof Events>(event: K, value: Events[K]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        (listener as (value: Events[K]) => void)(value);
      } catch (error) {
        this.onListenerError(error, event);
      }
    }
  }
}

import type { EventMap, EventName } from './events.js';
import type { Logger } from '../../../common/log.js';

type Listener<K extends EventName> = (payload: EventMap[K]) => void;

/**
 * Synchronous typed event bus. A throwing listener is logged and isolated: one capability's bug
 * must not stop the failover event from reaching the others.
 */
export class EventBus {
  private readonly listeners = new Map<EventName, Set<Listener<never>>>();
  private anyListeners = new Set<(name: EventName, payload: unknown) => void>();

  constructor(private readonly log?: Logger) {}

  on<K extends EventName>(name: K, fn: Listener<K>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => set.delete(fn as Listener<never>);
  }

  /** Every event, for telemetry's event forwarding and tests. */
  onAny(fn: (name: EventName, payload: unknown) => void): () => void {
    this.anyListeners.add(fn);
    return () => this.anyListeners.delete(fn);
  }

  emit<K extends EventName>(name: K, payload: EventMap[K]): void {
    for (const fn of this.listeners.get(name) ?? []) this.call(name, () => (fn as Listener<K>)(payload));
    for (const fn of this.anyListeners) this.call(name, () => fn(name, payload));
  }

  /** Resolves with the next matching event; for tests and drills. */
  waitFor<K extends EventName>(name: K, pred: (p: EventMap[K]) => boolean = () => true, timeoutMs = 10_000): Promise<EventMap[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${name}`));
      }, timeoutMs);
      const off = this.on(name, (p) => {
        if (!pred(p)) return;
        clearTimeout(timer);
        off();
        resolve(p);
      });
    });
  }

  private call(name: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log?.error('event listener threw', { event: name, error: (e as Error).message });
    }
  }
}

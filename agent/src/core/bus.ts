import type { EventMap, EventName } from './events.js';
import type { Logger } from '../../../common/log.js';

type Listener<K extends EventName> = (payload: EventMap[K]) => void;

export interface EmitOptions {
  /**
   * In-process only: given to `on` listeners, not to `onAny` (the MQTT outbox, the status page
   * push). For state published several times a second (`uplinks.snapshot`); its transitions go out
   * as their own events (`uplink.changed`).
   */
  local?: boolean;
}

/**
 * Synchronous typed event bus. A throwing listener is logged and isolated: one capability's bug
 * must not stop the failover event from reaching the others.
 */
export class EventBus {
  private readonly listeners = new Map<EventName, Set<Listener<never>>>();
  private anyListeners = new Set<(name: EventName, payload: unknown) => void>();
  private readonly lastPayload = new Map<EventName, unknown>();

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

  emit<K extends EventName>(name: K, payload: EventMap[K], opts: EmitOptions = {}): void {
    this.lastPayload.set(name, payload);
    for (const fn of this.listeners.get(name) ?? []) this.call(name, () => (fn as Listener<K>)(payload));
    if (opts.local) return;
    for (const fn of this.anyListeners) this.call(name, () => fn(name, payload));
  }

  /**
   * The last payload emitted under `name` (like an MQTT retained message): a capability that starts
   * after the publisher reads the current state at once instead of waiting for the next one.
   */
  last<K extends EventName>(name: K): EventMap[K] | undefined {
    return this.lastPayload.get(name) as EventMap[K] | undefined;
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

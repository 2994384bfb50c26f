import type { EventBus } from '../core/bus.js';
import type { Clock, TimerHandle } from '../../../common/clock.js';
import { describeError } from '../../../common/errors.js';
import type { Logger } from '../../../common/log.js';
import { Backoff } from '../../../common/retry.js';
import type { CaptureItem, CaptureQueue, CaptureState } from './capture.js';
import { fieldsOf } from '../../../common/fields.js';
import { HttpClient, type FetchLike, type HttpResponse } from './http-fetch.js';

/**
 * Store-and-forward of offline captures: one item at a time, oldest first, to the configured
 * endpoint. The protocol (docs/records-viewer.md):
 *
 *   POST <upstreamUrl>   Idempotency-Key: <capture id>   body: the item with its provenance
 *   2xx          -> accepted (optional JSON `{ "ref": "..." }` kept as the upstream reference)
 *   409          -> accepted when the body says `{ "duplicate": true }` (the key was filed before)
 *   400/404/422  -> rejected, the response's `reason` (or status text) kept for a person
 *   anything else, a timeout or no connection -> back to pending, retried with jittered backoff
 *
 * The item is marked `sent` in the database before the request leaves, so after a crash it is
 * sent again with the same key and the endpoint's dedupe makes that harmless.
 */
export interface ForwarderOptions {
  upstreamUrl: string;
  authToken?: string;
  timeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** Site identity sent with each item so the endpoint knows which practice filed it. */
  site: { deviceId: string; odsCode: string };
  clock: Clock;
  log: Logger;
  bus: EventBus;
  /** Default: a keep-alive HttpClient of its own (http-fetch.ts). */
  fetch?: FetchLike;
}

export class CaptureForwarder {
  private timer: TimerHandle | undefined;
  private running = false;
  private stopped = true;
  private busy: Promise<void> | null = null;
  /** Aborts a request in flight on stop(), so the agent never waits out a slow endpoint. */
  private abort = new AbortController();
  private readonly backoff: Backoff;
  private readonly send: FetchLike;
  lastError: string | null = null;
  lastSuccessAt: number | null = null;

  constructor(
    private readonly queue: CaptureQueue,
    private readonly opts: ForwarderOptions,
  ) {
    this.backoff = new Backoff({ initialMs: opts.retryInitialMs, maxMs: opts.retryMaxMs });
    this.send = opts.fetch ?? new HttpClient().fetch;
  }

  get enabled(): boolean {
    return this.opts.upstreamUrl !== '';
  }

  start(): void {
    this.stopped = false;
    this.abort = new AbortController();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.abort.abort();
    await this.busy;
  }

  /** Something new was captured (or resolved): try now instead of waiting out the backoff. */
  kick(): void {
    if (this.stopped || !this.enabled) return;
    this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.running) return;
    this.busy = this.drain()
      // A bug or a surprise from the endpoint must not become an unhandled rejection (which ends
      // the agent): log it and try again after the backoff.
      .catch((e: unknown) => {
        this.opts.log.error('capture forwarding failed', describeError(e));
        if (!this.stopped) this.timer = this.opts.clock.setTimeout(() => this.kick(), this.backoff.next());
      })
      .finally(() => (this.busy = null));
  }

  /** Send until the queue is empty or the endpoint is unreachable (then schedule a retry). */
  private async drain(): Promise<void> {
    this.running = true;
    try {
      for (;;) {
        if (this.stopped) return;
        const item = this.queue.nextToSend();
        if (!item) return;
        const ok = await this.sendOne(item);
        if (!ok) {
          const delay = this.backoff.next();
          if (!this.stopped) this.timer = this.opts.clock.setTimeout(() => this.kick(), delay);
          return;
        }
        this.backoff.reset();
      }
    } finally {
      this.running = false;
    }
  }

  /** true when the item reached a final state; false when the endpoint was unreachable. */
  private async sendOne(item: CaptureItem): Promise<boolean> {
    this.queue.markSent(item.id);
    this.emit(item, 'sent');
    const f = this.send;
    let res: HttpResponse;
    let body: Record<string, unknown> = {};
    try {
      res = await f(this.opts.upstreamUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': item.id,
          ...(this.opts.authToken ? { authorization: `Bearer ${this.opts.authToken}` } : {}),
        },
        body: JSON.stringify(wireFormat(item, this.opts.site)),
        signal: AbortSignal.any([AbortSignal.timeout(this.opts.timeoutMs), this.abort.signal]),
      });
      const raw = await res.text();
      try {
        // Only a JSON object is a usable answer: `null`, a number or an array reads as "no details".
        const parsed: unknown = raw ? JSON.parse(raw) : {};
        body = fieldsOf(parsed);
      } catch {
        body = { reason: raw.slice(0, 200) };
      }
    } catch (e) {
      return this.unreachable(item, describeError(e).message);
    }
    if (res.ok || (res.status === 409 && body.duplicate === true)) {
      this.queue.markAccepted(item.id, typeof body.ref === 'string' ? body.ref.slice(0, 200) : null);
      this.lastSuccessAt = this.opts.clock.now();
      this.lastError = null;
      this.emit(item, 'accepted');
      return true;
    }
    if ([400, 404, 409, 410, 422].includes(res.status)) {
      const reason = typeof body.reason === 'string' && body.reason ? body.reason : `HTTP ${res.status} ${res.statusText}`;
      this.queue.markRejected(item.id, reason);
      this.lastError = null;
      this.opts.log.warn('capture rejected by upstream', { id: item.id, kind: item.kind, status: res.status });
      this.emit(item, 'rejected');
      return true;
    }
    return this.unreachable(item, `HTTP ${res.status}`);
  }

  private unreachable(item: CaptureItem, error: string): false {
    this.queue.markPending(item.id, error);
    this.lastError = error;
    this.opts.log.info('capture endpoint unavailable; will retry', { id: item.id, error });
    this.emit(item, 'pending');
    return false;
  }

  private emit(item: CaptureItem, state: CaptureState): void {
    this.opts.bus.emit('records.capture-state', { id: item.id, kind: item.kind, state, at: this.opts.clock.now() });
  }
}

/** What the endpoint receives: the item and its provenance, no local bookkeeping. */
export function wireFormat(item: CaptureItem, site: { deviceId: string; odsCode: string }) {
  return {
    id: item.id,
    kind: item.kind,
    patientId: item.patientId,
    payload: item.payload,
    provenance: { author: item.author, role: item.role, device: item.device, capturedAt: new Date(item.createdAt).toISOString() },
    site,
    supersedes: item.supersedes,
  };
}

/**
 * Per-source limit on login attempts. The per-account lockout stops guessing one password, but
 * not one source trying a few passwords on every account (password spraying), nor a flood of
 * scrypt work. Each attempt reserves a slot before the password is checked (so a parallel burst
 * cannot slip past the count); a successful sign-in gives its slot back.
 */
export class LoginLimiter {
  private readonly windows = new Map<string, { count: number; start: number; told: boolean }>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number,
    /** Distinct sources remembered at most (a LAN has far fewer; this bounds memory under a spoofing flood). */
    private readonly maxSources = 10_000,
  ) {}

  /** Reserve an attempt for `source`; `firstRefusal` is true once per window so the log is not flooded. */
  take(source: string): { ok: true } | { ok: false; retryAfterMs: number; firstRefusal: boolean } {
    const t = this.now();
    let w = this.windows.get(source);
    if (!w || t - w.start >= this.windowMs) {
      this.prune(t);
      w = { count: 0, start: t, told: false };
      this.windows.set(source, w);
    }
    if (w.count >= this.max) {
      const firstRefusal = !w.told;
      w.told = true;
      return { ok: false, retryAfterMs: w.start + this.windowMs - t, firstRefusal };
    }
    w.count++;
    return { ok: true };
  }

  /** A successful sign-in does not use up the source's budget. */
  refund(source: string): void {
    const w = this.windows.get(source);
    if (w && w.count > 0) w.count--;
  }

  private prune(t: number): void {
    if (this.windows.size < this.maxSources) return;
    for (const [k, w] of this.windows) if (t - w.start >= this.windowMs) this.windows.delete(k);
    // Still full: forget the oldest sources (Map keeps insertion order).
    for (const k of this.windows.keys()) {
      if (this.windows.size < this.maxSources) break;
      this.windows.delete(k);
    }
  }
}

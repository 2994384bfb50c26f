/** A bounded window of recent figures (ingest lag), with percentiles on demand. */
export class Window {
  private readonly buf: number[] = [];
  private i = 0;
  count = 0;
  constructor(private readonly size = 20_000) {}
  push(v: number): void {
    this.count++;
    if (this.buf.length < this.size) this.buf.push(v);
    else {
      this.buf[this.i] = v;
      this.i = (this.i + 1) % this.size;
    }
  }
  percentile(p: number): number | null {
    if (!this.buf.length) return null;
    const s = [...this.buf].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
  }
  reset(): void {
    this.buf.length = 0;
    this.i = 0;
    this.count = 0;
  }
}

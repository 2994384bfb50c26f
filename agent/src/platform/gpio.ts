import type { Clock, TimerHandle } from '../../../common/clock.js';
import { CHANNELS, TIMINGS, type LedChannel, type LedDriver, type LedPattern } from './leds.js';
import type { CommandRunner } from './command.js';

/**
 * Status LED on GPIO lines through libgpiod 1.6 (Debian bookworm's `gpiod` package):
 *   gpioset <chip> <offset>=<0|1> [<offset>=<0|1> ...]
 * sets the lines and exits (the value is kept by the pin controller on the Pi). GPIO has no
 * kernel blink trigger, so blinking is done here with the agent's clock.
 */
export class GpioLeds implements LedDriver {
  private timer: TimerHandle | undefined;
  private phaseOn = true;
  private pattern: LedPattern = { color: 'off', mode: 'steady' };
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly commands: CommandRunner,
    private readonly clock: Clock,
    private readonly opts: { chip: string; lines: Partial<Record<LedChannel, number>>; activeLow: boolean },
  ) {}

  private async set(on: boolean): Promise<void> {
    const lit = new Set(CHANNELS[this.pattern.color]);
    const args: string[] = [];
    for (const ch of ['red', 'green', 'blue'] as const) {
      const line = this.opts.lines[ch];
      if (line === undefined || line < 0) continue;
      const value = on && lit.has(ch) ? 1 : 0;
      args.push(`${line}=${this.opts.activeLow ? 1 - value : value}`);
    }
    if (args.length === 0) return;
    await this.commands.run('gpioset', [this.opts.chip, ...args], { timeoutMs: 2000 });
  }

  private tick = (): void => {
    if (this.pattern.mode === 'steady') return;
    const t = TIMINGS[this.pattern.mode];
    this.phaseOn = !this.phaseOn;
    this.writing = this.writing.then(() => this.set(this.phaseOn)).catch(() => {});
    this.timer = this.clock.setTimeout(this.tick, this.phaseOn ? t.onMs : t.offMs);
  };

  async apply(p: LedPattern): Promise<void> {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.pattern = p;
    this.phaseOn = true;
    await this.writing;
    await this.set(true);
    if (p.mode !== 'steady') this.timer = this.clock.setTimeout(this.tick, TIMINGS[p.mode].onMs);
  }

  async close(): Promise<void> {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.pattern = { color: 'off', mode: 'steady' };
    await this.writing;
    await this.set(false).catch(() => {});
  }
}

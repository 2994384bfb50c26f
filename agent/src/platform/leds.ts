import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Platform } from './platform.js';

/**
 * The status LED: one RGB (or red/green/blue discrete) LED showing the practice state to anyone
 * walking past the comms cupboard. Drivers: Linux sysfs LEDs (the kernel blinks them itself with
 * the 'timer' trigger, so a hung agent still shows its last state) or GPIO lines via libgpiod's
 * gpioset (the agent toggles them).
 */
export type LedColor = 'off' | 'green' | 'amber' | 'red' | 'blue';
export type LedMode = 'steady' | 'slow' | 'fast' | 'pulse';
export interface LedPattern {
  color: LedColor;
  mode: LedMode;
}
export type LedChannel = 'red' | 'green' | 'blue';

/** Blink timings in ms (on, off). Slow ~0.5 Hz reads as "attention", fast ~3 Hz as "alarm". */
export const TIMINGS: Record<Exclude<LedMode, 'steady'>, { onMs: number; offMs: number }> = {
  slow: { onMs: 1000, offMs: 1000 },
  fast: { onMs: 150, offMs: 150 },
  pulse: { onMs: 250, offMs: 750 },
};

/** Amber is red + green together (what an RGB LED can show). */
export const CHANNELS: Record<LedColor, LedChannel[]> = { off: [], green: ['green'], amber: ['red', 'green'], red: ['red'], blue: ['blue'] };

export interface LedDriver {
  apply(p: LedPattern): Promise<void>;
  /** Release the LED (off; stop any software blinking). */
  close(): Promise<void>;
}

export class NoLeds implements LedDriver {
  async apply(): Promise<void> {}
  async close(): Promise<void> {}
}

/**
 * /sys/class/leds/<name>/{brightness,trigger,delay_on,delay_off,max_brightness}. Writing
 * 'timer' to trigger creates delay_on/delay_off; writing brightness 0 removes any trigger.
 * Sysfs attributes are written in place (they cannot be renamed over).
 */
export class SysfsLeds implements LedDriver {
  constructor(
    private readonly platform: Platform,
    private readonly names: Partial<Record<LedChannel, string>>,
  ) {}

  private dir(name: string): string {
    return this.platform.hostPath(join('/sys/class/leds', name));
  }

  private max(name: string): number {
    try {
      const v = Number.parseInt(readFileSync(join(this.dir(name), 'max_brightness'), 'utf8'), 10);
      return Number.isFinite(v) && v > 0 ? v : 1;
    } catch {
      return 1;
    }
  }

  private write(name: string, attr: string, value: string | number): void {
    writeFileSync(join(this.dir(name), attr), `${value}\n`);
  }

  async apply(p: LedPattern): Promise<void> {
    const lit = new Set(CHANNELS[p.color]);
    for (const ch of ['red', 'green', 'blue'] as const) {
      const name = this.names[ch];
      if (!name) continue;
      if (!lit.has(ch)) {
        this.write(name, 'trigger', 'none');
        this.write(name, 'brightness', 0);
      } else if (p.mode === 'steady') {
        this.write(name, 'trigger', 'none');
        this.write(name, 'brightness', this.max(name));
      } else {
        const t = TIMINGS[p.mode];
        this.write(name, 'brightness', this.max(name));
        this.write(name, 'trigger', 'timer');
        this.write(name, 'delay_on', t.onMs);
        this.write(name, 'delay_off', t.offMs);
      }
    }
  }

  async close(): Promise<void> {
    await this.apply({ color: 'off', mode: 'steady' });
  }
}

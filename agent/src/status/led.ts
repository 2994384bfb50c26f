import type { Ctx } from '../core/capability.js';
import { describeError } from '../../../common/errors.js';
import { GpioLeds } from '../platform/gpio.js';
import { NoLeds, SysfsLeds, type LedDriver, type LedPattern } from '../platform/leds.js';
import type { StateLevel } from './state.js';

/**
 * The documented LED patterns (docs/status-page.md has the same table for the practice).
 * A drill in progress overrides a normal/attention state so staff know the blip they might see is
 * deliberate, but never an outage (backup/offline): the LED must not hide that.
 */
export const LED_PATTERNS: Record<StateLevel | 'drill' | 'stopped', LedPattern & { meaning: string }> = {
  normal: { color: 'green', mode: 'steady', meaning: 'All systems normal' },
  attention: {
    color: 'amber',
    mode: 'steady',
    meaning: 'Working, but something needs attention (records cache locked or not ready, backup unavailable, drill failed)',
  },
  backup: { color: 'amber', mode: 'slow', meaning: 'Internet down: running on the 4G / Wi-Fi backup' },
  offline: { color: 'red', mode: 'fast', meaning: 'Offline: no internet at all; records cache only' },
  unknown: { color: 'green', mode: 'slow', meaning: 'Starting up / checking connections' },
  unenrolled: { color: 'blue', mode: 'steady', meaning: 'Not enrolled: waiting for an ICB engineer to claim this box' },
  setup: { color: 'blue', mode: 'slow', meaning: 'Not set up yet: waiting for the practice manager to set up this box' },
  drill: { color: 'blue', mode: 'pulse', meaning: 'A backup drill is running' },
  stopped: { color: 'off', mode: 'steady', meaning: 'Agent not running (LED off)' },
};

export function ledPatternFor(level: StateLevel, drillRunning: boolean): LedPattern {
  // A drill never hides an outage: on backup or offline the LED keeps saying so.
  const p = drillRunning && level !== 'backup' && level !== 'offline' ? LED_PATTERNS.drill : LED_PATTERNS[level];
  return { color: p.color, mode: p.mode };
}

export function createLedDriver(ctx: Ctx): LedDriver {
  const c = ctx.config.status.led;
  if (c.driver === 'sysfs') {
    const names = Object.fromEntries(Object.entries(c.sysfs).filter(([, v]) => v)) as Record<string, string>;
    return new SysfsLeds(ctx.platform, names);
  }
  if (c.driver === 'gpio') {
    return new GpioLeds(ctx.platform.commands, ctx.clock, {
      chip: c.gpio.chip,
      lines: { red: c.gpio.red, green: c.gpio.green, blue: c.gpio.blue },
      activeLow: c.gpio.activeLow,
    });
  }
  return new NoLeds();
}

/** Applies a pattern only when it changes (LED writes are cheap, gpioset spawns are not). */
export class LedController {
  private current = '';
  private failedOnce = false;
  constructor(
    private readonly driver: LedDriver,
    private readonly ctx: Ctx,
  ) {}

  async show(level: StateLevel, drillRunning: boolean): Promise<void> {
    const p = ledPatternFor(level, drillRunning);
    const key = `${p.color}/${p.mode}`;
    if (key === this.current) return;
    this.current = key;
    try {
      await this.driver.apply(p);
      this.ctx.log.debug('status LED', { color: p.color, mode: p.mode });
    } catch (e) {
      this.current = '';
      // A missing LED must not take the status page down; say so once.
      if (!this.failedOnce) this.ctx.log.warn('could not drive the status LED', describeError(e));
      this.failedOnce = true;
    }
  }

  async close(): Promise<void> {
    await this.driver.close().catch(() => {});
  }
}

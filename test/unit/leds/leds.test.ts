import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { GpioLeds } from '../../../agent/src/platform/gpio.js';
import { SysfsLeds } from '../../../agent/src/platform/leds.js';
import { createLedDriver, LED_PATTERNS, LedController, ledPatternFor } from '../../../agent/src/status/led.js';
import { createTestCtx } from '../../helpers/ctx.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeRunner } from '../../helpers/fake-runner.js';

/** A fake /sys/class/leds tree as the kernel lays it out (brightness, max_brightness, trigger). */
function fakeSysfs(root: string, names: string[]): (name: string, attr: string) => string {
  for (const n of names) {
    const d = join(root, 'sys/class/leds', n);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'brightness'), '0\n');
    writeFileSync(join(d, 'max_brightness'), '255\n');
    writeFileSync(join(d, 'trigger'), '[none] timer heartbeat default-on\n');
  }
  return (name, attr) => readFileSync(join(root, 'sys/class/leds', name, attr), 'utf8').trim();
}

describe('LED patterns', () => {
  it('documented mapping: green steady normal, slow amber backup, fast red offline, blue pulse drill', () => {
    assert.deepEqual(ledPatternFor('normal', false), { color: 'green', mode: 'steady' });
    assert.deepEqual(ledPatternFor('backup', false), { color: 'amber', mode: 'slow' });
    assert.deepEqual(ledPatternFor('offline', false), { color: 'red', mode: 'fast' });
    assert.deepEqual(ledPatternFor('normal', true), { color: 'blue', mode: 'pulse' });
    assert.deepEqual(ledPatternFor('attention', true), { color: 'blue', mode: 'pulse' });
    // A drill during an outage must not hide it.
    assert.deepEqual(ledPatternFor('offline', true), { color: 'red', mode: 'fast' });
    assert.deepEqual(ledPatternFor('backup', true), { color: 'amber', mode: 'slow' });
    assert.ok(Object.values(LED_PATTERNS).every((p) => p.meaning.length > 0));
  });
});

describe('sysfs LEDs under a root prefix', () => {
  it('writes trigger/brightness/delays for each state', async () => {
    const ctx = createTestCtx({ config: { status: { led: { driver: 'sysfs', sysfs: { red: 'st:red', green: 'st:green', blue: 'st:blue' } } } } });
    try {
      const read = fakeSysfs(ctx.config.paths.root, ['st:red', 'st:green', 'st:blue']);
      const leds = createLedDriver(ctx);
      assert.ok(leds instanceof SysfsLeds);
      const ctl = new LedController(leds, ctx);

      await ctl.show('normal', false);
      assert.deepEqual([read('st:green', 'trigger'), read('st:green', 'brightness')], ['none', '255']);
      assert.equal(read('st:red', 'brightness'), '0');
      assert.equal(read('st:blue', 'brightness'), '0');

      await ctl.show('backup', false); // amber = red + green, slow blink via the kernel timer trigger
      for (const n of ['st:red', 'st:green']) {
        assert.equal(read(n, 'trigger'), 'timer');
        assert.equal(read(n, 'delay_on'), '1000');
        assert.equal(read(n, 'delay_off'), '1000');
      }
      assert.equal(read('st:blue', 'brightness'), '0');

      await ctl.show('offline', false);
      assert.equal(read('st:red', 'trigger'), 'timer');
      assert.equal(read('st:red', 'delay_on'), '150');
      assert.deepEqual([read('st:green', 'trigger'), read('st:green', 'brightness')], ['none', '0']);

      await ctl.show('normal', true);
      assert.equal(read('st:blue', 'trigger'), 'timer');
      assert.equal(read('st:blue', 'delay_off'), '750');
      assert.equal(read('st:red', 'brightness'), '0');

      await ctl.close();
      for (const n of ['st:red', 'st:green', 'st:blue']) assert.equal(read(n, 'brightness'), '0');
    } finally {
      ctx.cleanup();
    }
  });

  it('a missing LED is logged once and does not throw', async () => {
    const ctx = createTestCtx({ config: { status: { led: { driver: 'sysfs', sysfs: { green: 'absent' } } } } });
    try {
      const ctl = new LedController(createLedDriver(ctx), ctx);
      await ctl.show('normal', false);
      await ctl.show('backup', false);
      assert.equal(ctx.logged.filter((e) => e.msg === 'could not drive the status LED').length, 1);
    } finally {
      ctx.cleanup();
    }
  });
});

describe('GPIO LEDs via gpioset', () => {
  it('sets lines with libgpiod 1.x syntax and blinks on the clock', async () => {
    const clock = new FakeClock();
    const runner = new FakeRunner().on('gpioset', () => ({ stdout: '' }));
    const leds = new GpioLeds(runner, clock, { chip: 'gpiochip0', lines: { red: 17, green: 27, blue: 22 }, activeLow: false });
    await leds.apply({ color: 'green', mode: 'steady' });
    assert.deepEqual(runner.callsTo('gpioset').at(-1)!.args, ['gpiochip0', '17=0', '27=1', '22=0']);
    await clock.advance(5000);
    assert.equal(runner.callsTo('gpioset').length, 1, 'steady: no toggling');

    await leds.apply({ color: 'red', mode: 'fast' });
    const n0 = runner.callsTo('gpioset').length;
    assert.deepEqual(runner.callsTo('gpioset').at(-1)!.args, ['gpiochip0', '17=1', '27=0', '22=0']);
    await clock.advance(150);
    assert.deepEqual(runner.callsTo('gpioset').at(-1)!.args, ['gpiochip0', '17=0', '27=0', '22=0']);
    await clock.advance(150);
    assert.deepEqual(runner.callsTo('gpioset').at(-1)!.args, ['gpiochip0', '17=1', '27=0', '22=0']);
    await clock.advance(1500 - 300);
    assert.equal(runner.callsTo('gpioset').length - n0, 10, '150/150 ms for 1.5 s = 10 toggles');

    await leds.close();
    const calls = runner.callsTo('gpioset').length;
    await clock.advance(2000);
    assert.equal(runner.callsTo('gpioset').length, calls, 'stopped blinking');
  });

  it('honours active-low wiring', async () => {
    const runner = new FakeRunner().on('gpioset', () => ({}));
    const leds = new GpioLeds(runner, new FakeClock(), { chip: 'gpiochip4', lines: { green: 5 }, activeLow: true });
    await leds.apply({ color: 'green', mode: 'steady' });
    assert.deepEqual(runner.calls[0]!.args, ['gpiochip4', '5=0']);
  });
});

import { Type } from '@sinclair/typebox';
import { Bool, Ms, Obj, Str } from '../config/types.js';

/**
 * The `status` section: the LAN web server (status page, records viewer, JSON API, /metrics),
 * its accounts, the status LED and the weekly drill. One section because an operator finds it in
 * one place; the server itself is agent/src/web/ (built by the agent when `enabled`), the page is
 * the status capability, the drill the drills capability.
 */
export const StatusSection = Obj({
  enabled: Type.Boolean({ default: true }),
  listen: Type.String({ default: '0.0.0.0', description: 'Address the LAN web server listens on' }),
  port: Type.Integer({ default: 8080, minimum: 0, maximum: 65535, description: 'HTTPS port (0 = any free port, tests)' }),
  https: Bool(true, 'Serve HTTPS (self-signed certificate in stateDir/tls unless certPath/keyPath are given)'),
  tls: Obj({
    certPath: Str('', 'PEM certificate; empty = generate a self-signed one on first start'),
    keyPath: Str('', 'PEM private key matching certPath'),
  }),
  bodyLimitBytes: Type.Integer({ default: 65_536, minimum: 1024, description: 'Largest request body accepted; larger -> 413' }),
  refreshMs: Ms(3000, 'Status page push interval (also pushed on every bus event)', 250),
  maxConnections: Type.Integer({
    default: 1000,
    minimum: 10,
    description: 'Open TCP connections to the web server at once; more are closed at once (a flood of idle connections cannot exhaust the agent)',
  }),
  maxLiveViewers: Type.Integer({ default: 50, minimum: 1, description: 'Live status pages (SSE streams) open at once; more get 503' }),
  maxLiveViewersPerIp: Type.Integer({ default: 6, minimum: 1, description: 'Live status pages one device (IP address) may hold open; more get 429' }),
  auth: Obj({
    idleTimeoutMs: Ms(15 * 60_000, 'Sign a session out after this long without a request', 10_000),
    maxAgeMs: Ms(12 * 3600_000, 'Absolute session lifetime', 60_000),
    maxFailedAttempts: Type.Integer({ default: 10, minimum: 1, description: 'Wrong passwords in a row before the account locks' }),
    lockoutMs: Ms(15 * 60_000, 'How long a locked account stays locked (an admin can unlock sooner: `surgery-edge user unlock`)'),
    maxLoginAttemptsPerIp: Type.Integer({
      default: 30,
      minimum: 1,
      description: 'Failed sign-in attempts one device (IP address) may make per loginWindowMs before it must wait (429)',
    }),
    loginWindowMs: Ms(15 * 60_000, 'Window for maxLoginAttemptsPerIp', 1000),
  }),
  led: Obj({
    driver: Type.Union([Type.Literal('none'), Type.Literal('sysfs'), Type.Literal('gpio')], {
      default: 'none',
      description: 'none | sysfs (/sys/class/leds/<name>) | gpio (libgpiod gpioset)',
    }),
    sysfs: Obj({
      red: Str('', 'sysfs LED name for the red channel, e.g. "status:red"'),
      green: Str('', 'sysfs LED name for the green channel'),
      blue: Str('', 'sysfs LED name for the blue channel'),
    }),
    gpio: Obj({
      chip: Str('gpiochip0', 'GPIO chip for gpioset'),
      red: Type.Integer({ default: -1, description: 'line offset of the red channel (-1 = not fitted)' }),
      green: Type.Integer({ default: -1 }),
      blue: Type.Integer({ default: -1 }),
      activeLow: Bool(false, 'LED lit when the line is low'),
    }),
  }),
  setup: Obj({
    required: Bool(
      false,
      'Until set up, the status page offers the first-run wizard (/setup) and says "Not set up yet" (the image and practice bundles set true). A box ' +
        'with an admin account already counts as set up',
    ),
    maxCodeAttemptsPerIp: Type.Integer({ default: 5, minimum: 1, description: 'Wrong set-up codes one device (IP address) may enter per codeWindowMs' }),
    maxCodeAttempts: Type.Integer({
      default: 20,
      minimum: 1,
      description: 'Wrong set-up codes from all devices together per codeWindowMs (a spoofing flood cannot search the code space)',
    }),
    codeWindowMs: Ms(15 * 60_000, 'Window for the set-up code attempt limits', 1000),
    sessionMs: Ms(60 * 60_000, 'How long a browser that entered the right code may take to finish the wizard', 60_000),
  }),
  drills: Obj({
    enabled: Bool(true, 'Run the scheduled drill'),
    weekday: Type.Integer({ default: 0, minimum: -1, maximum: 6, description: 'Day of the week (0 = Sunday, 6 = Saturday; -1 = every day), local time' }),
    time: Type.String({ default: '06:30', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'Quiet time of day, local HH:MM' }),
    stepTimeoutMs: Ms(60_000, 'A step taking longer than this fails', 1000),
    keep: Type.Integer({ default: 200, minimum: 1, description: 'Drill results kept in the state db' }),
  }),
});

import { configPathFrom, parse } from '../core/cli-args.js';
import type { CliCommand } from '../core/cli-command.js';
import { loadConfig } from '../config/load.js';
import { describeError } from '../../../common/errors.js';
import { ulid } from '../core/ids.js';
import { createPlatform } from '../platform/platform.js';
import { VERSION } from '../version.js';
import { openSource } from './download.js';
import { loadTrustedKeys } from './keys.js';
import { hostArch, slotImage } from './manifest.js';
import { bootControlFor, runInstall, storeFor } from './setup.js';
import { verifyBundle } from './verify.js';

const USAGE = `usage:
  surgery-edge update verify BUNDLE [--keys DIR] [--arch amd64|arm64] [--current VERSION]
  surgery-edge update install BUNDLE|URL [--version V] [--config FILE] [--reboot]
  surgery-edge update status [--config FILE]
`;

const line = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify(o) + '\n');

/**
 * `surgery-edge update`: verify a bundle (the signing machine's last check, or an engineer's USB
 * stick), install one by hand into the inactive slot (root; the running agent sees the result at
 * its next start), or show the update state. Exit 0 ok, 1 refused or failed, 2 usage.
 */
export const updateCommand: CliCommand = {
  summary: 'update verify|install|status: signed A/B update bundles (docs/updates.md)',
  async run(args) {
    const [sub, ...rest] = args;
    const { values, positionals } = parse(
      rest,
      {
        config: { type: 'string', short: 'c' },
        keys: { type: 'string' },
        arch: { type: 'string' },
        current: { type: 'string' },
        version: { type: 'string' },
        reboot: { type: 'boolean' },
      },
      true,
    );
    const config = loadConfig(configPathFrom(values.config));
    const platform = createPlatform({ root: config.paths.root });
    try {
      if (sub === 'verify' && positionals[0]) {
        const keys = loadTrustedKeys(values.keys ?? platform.hostPath(config.update.keysDir));
        const src = await openSource(positionals[0], { idleTimeoutMs: config.update.downloadTimeoutMs, maxBytes: config.update.maxBundleBytes });
        const r = await verifyBundle(src, {
          keys,
          arch: values.arch ?? hostArch(),
          currentVersion: values.current ?? '0.0.0',
          maxPayloadBytes: config.update.maxBundleBytes,
        });
        line({
          ok: true,
          version: r.manifest.version,
          arch: r.manifest.arch,
          keyId: r.keyId,
          format: r.manifest.format,
          payloadBytes: slotImage(r.manifest).size,
          bundleBytes: r.bundleBytes,
          ...(r.manifest.format === 2 ? { store: r.manifest.store } : {}),
        });
        return 0;
      }
      if (sub === 'install' && positionals[0]) {
        const boot = bootControlFor(config, platform);
        const store = storeFor(config);
        const r = await runInstall({
          config,
          platform,
          boot,
          store,
          id: ulid(Date.now()),
          where: positionals[0],
          currentVersion: VERSION,
          ...(values.version ? { expectedVersion: values.version } : {}),
          now: Date.now,
          onProgress: (step, done, total) => line({ step, ...(done !== undefined ? { done, total } : {}) }),
        });
        line({
          ok: true,
          installed: r.manifest.version,
          slot: r.slot,
          ...(r.delta ? { delta: r.delta } : {}),
          next: values.reboot ? 'rebooting' : 'reboot to try it; the agent commits or rolls back',
        });
        if (values.reboot) await platform.commands.run('systemctl', ['reboot'], { timeoutMs: 10_000 });
        return 0;
      }
      if (sub === 'status') {
        const boot = bootControlFor(config, platform);
        let bootState: unknown = null;
        try {
          bootState = boot.state();
        } catch (e) {
          bootState = { unavailable: describeError(e).message };
        }
        line({ version: VERSION, boot: boot.kind, bootState, update: storeFor(config).read() });
        return 0;
      }
    } catch (e) {
      const d = describeError(e);
      // Record a by-hand install's refusal too, so `status` and the agent tell the same story.
      if (sub === 'install') {
        const store = storeFor(config);
        if (store.read().phase === 'installing') store.update({ phase: d.code.startsWith('UPDATE_') ? 'refused' : 'failed', error: d }, Date.now());
      }
      line({ ok: false, ...d });
      return 1;
    }
    process.stderr.write(USAGE);
    return 2;
  },
};

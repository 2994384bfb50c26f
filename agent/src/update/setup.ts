import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { detectBootControl, type BootControl } from '../platform/boot-control.js';
import type { Platform } from '../platform/platform.js';
import { installBundle, type InstallResult } from './installer.js';
import { loadTrustedKeys } from './keys.js';
import { hostArch } from './manifest.js';
import { openSource } from './download.js';
import { UpdateStateStore } from './state.js';

/** The pieces the capability and the `surgery-edge update` CLI both build from one config. */
export function bootControlFor(config: Config, platform: Platform): BootControl {
  const u = config.update;
  return detectBootControl({ mode: u.bootControl, hostPath: platform.hostPath, grubenvPath: u.grubenvPath, slotDevices: { a: u.slotA, b: u.slotB } });
}

export function storeFor(config: Config): UpdateStateStore {
  return new UpdateStateStore(config.paths.stateDir);
}

/** CA for https bundle URLs: update.caPath, else the telemetry CA (the ICB's), else system CAs. */
export function downloadCa(config: Config, platform: Platform): Buffer | undefined {
  const p = config.update.caPath || config.telemetry.caPath;
  if (!p) return undefined;
  try {
    return readFileSync(platform.hostPath(p));
  } catch {
    return undefined;
  }
}

export interface RunInstallOptions {
  config: Config;
  platform: Platform;
  boot: BootControl;
  store: UpdateStateStore;
  id: string;
  where: string;
  currentVersion: string;
  expectedVersion?: string;
  now: () => number;
  signal?: AbortSignal;
  onProgress?: (step: string, done?: number, total?: number) => void;
}

/** One install from a URL or path into the inactive slot (the agent's `update` command and the CLI). */
export function runInstall(o: RunInstallOptions): Promise<InstallResult> {
  const u = o.config.update;
  const arch = hostArch();
  const ca = downloadCa(o.config, o.platform);
  return installBundle({
    source: () => openSource(o.where, { ca, idleTimeoutMs: u.downloadTimeoutMs, maxBytes: u.maxBundleBytes, ...(o.signal ? { signal: o.signal } : {}) }),
    from: o.where,
    id: o.id,
    boot: o.boot,
    store: o.store,
    keys: loadTrustedKeys(o.platform.hostPath(u.keysDir)),
    arch,
    currentVersion: o.currentVersion,
    ...(o.expectedVersion !== undefined ? { expectedVersion: o.expectedVersion } : {}),
    commands: o.platform.commands,
    now: o.now,
    fetch: { ca, idleTimeoutMs: u.downloadTimeoutMs, maxBytes: u.maxBundleBytes, ...(o.signal ? { signal: o.signal } : {}) },
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
}

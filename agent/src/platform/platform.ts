import { makeHostPath } from '../core/fs.js';
import { ProcessRunner, type CommandRunner } from './command.js';

/**
 * Every OS side effect sits behind this object. Capability-specific adapters (ip, nft, conntrack,
 * mmcli, Wi-Fi, LEDs) are small classes in this folder built on `commands` and `hostPath`, each
 * with a fake that speaks the real tool's output format.
 */
// Every capability's context carries the platform; core/ declares the context without it (core imports nothing).
declare module '../core/capability.js' {
  interface Ctx {
    platform: Platform;
  }
}

export interface Platform {
  commands: CommandRunner;
  /** Resolve an absolute host path under the configured root prefix. */
  hostPath(p: string): string;
  /** True when the agent may change kernel state (root, or CAP_NET_ADMIN in the lab). */
  readonly privileged: boolean;
}

export function createPlatform(opts: { root: string; commands?: CommandRunner }): Platform {
  return {
    commands: opts.commands ?? new ProcessRunner(),
    hostPath: makeHostPath(opts.root),
    privileged: process.getuid?.() === 0,
  };
}

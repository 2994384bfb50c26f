import type { GrubEnv, Slot } from '../../agent/src/platform/grubenv.js';

/**
 * What image/grub/grub.cfg does with the block at boot, mirrored for tests: boot `se_active`
 * (default a); when `se_try=1`, clear it first (save_env) and boot `se_try_slot` once. Returns the
 * slot booted and the block as GRUB leaves it. The qemu test (make test-image) runs the real GRUB.
 */
export function grubBoot(env: GrubEnv): { slot: Slot; env: GrubEnv } {
  const active: Slot = env.se_active === 'b' ? 'b' : 'a';
  if (env.se_try === '1') {
    const next = { ...env, se_try: '0' };
    const trySlot = env.se_try_slot === 'a' || env.se_try_slot === 'b' ? env.se_try_slot : active;
    return { slot: trySlot, env: next };
  }
  return { slot: active, env };
}

import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/fs.js';
import type { Slot } from '../platform/grubenv.js';

/**
 * The update's progress on the data partition, one JSON file rewritten atomically at every step,
 * so after a power cut the agent knows which step was last completed and can finish or undo it.
 * It is the only record of an update's story; the boot environment (grubenv) holds the decision
 * of what boots, and nothing here can make GRUB boot a slot that was not fully verified.
 */
export type UpdatePhase = 'idle' | 'downloading' | 'staged' | 'installing' | 'installed' | 'trial' | 'committed' | 'rolled-back' | 'failed' | 'refused';

export interface UpdateState {
  phase: UpdatePhase;
  id: string | null;
  version: string | null;
  fromVersion: string | null;
  /** Target slot of the install. */
  slot: Slot | null;
  bundlePath: string | null;
  at: number;
  /** When the trial boot started (health gate clock). */
  trialSince?: number | null;
  error?: { code: string; message: string } | null;
  /** Anti-rollback floor: the highest version ever committed on this device. */
  floorVersion: string | null;
}

export const IDLE: UpdateState = { phase: 'idle', id: null, version: null, fromVersion: null, slot: null, bundlePath: null, at: 0, floorVersion: null };

export class UpdateStateStore {
  readonly dir: string;
  private readonly file: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'update');
    this.file = join(this.dir, 'state.json');
  }

  read(): UpdateState {
    try {
      const s = JSON.parse(readFileSync(this.file, 'utf8')) as Partial<UpdateState>;
      if (typeof s.phase !== 'string') return { ...IDLE };
      return { ...IDLE, ...s } as UpdateState;
    } catch {
      // Absent (first boot) or unreadable: nothing in flight. writeFileAtomic never leaves half a file.
      return { ...IDLE };
    }
  }

  write(s: UpdateState): UpdateState {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.file, JSON.stringify(s, null, 1) + '\n', 0o600);
    return s;
  }

  update(patch: Partial<UpdateState>, at: number): UpdateState {
    return this.write({ ...this.read(), ...patch, at });
  }
}

/**
 * One errors module: every error the agent raises on purpose carries a stable code,
 * so logs, the CLI, MQTT error responses and tests can match on it rather than on prose.
 */
export const ErrorCodes = [
  'CONFIG_INVALID',
  'CONFIG_UNREADABLE',
  'COMMAND_FAILED',
  'COMMAND_TIMEOUT',
  'NOT_FOUND',
  'BAD_REQUEST',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'LOCKED_OUT',
  'CONFLICT',
  'UPSTREAM_ERROR',
  'UNAVAILABLE',
  'INTERNAL',
  // Update bundles (agent/src/update/): one code per reason a bundle is refused, so the fleet can
  // tell an attack (bad signature) from a flaky download (truncated) without parsing prose.
  'UPDATE_UNSIGNED',
  'UPDATE_UNTRUSTED_KEY',
  'UPDATE_BAD_SIGNATURE',
  'UPDATE_DOWNGRADE',
  'UPDATE_WRONG_ARCH',
  'UPDATE_TRUNCATED',
  'UPDATE_CORRUPT',
  'UPDATE_MALFORMED',
  'UPDATE_TOO_LARGE',
  'UPDATE_VERSION_MISMATCH',
  // A delta bundle (format 2) names a chunk its chunk store does not have: the store was pruned or
  // only partly published. Nothing was armed; publish the chunks again or send the full bundle.
  'UPDATE_CHUNK_MISSING',
  // A download over the network was not started, or was stopped, because traffic is on 4G or backup
  // Wi-Fi and the command did not allow it (`allowCellular`). Nothing was armed; it can be sent again.
  'UPDATE_ON_BACKUP_LINK',
] as const;
export type ErrorCode = (typeof ErrorCodes)[number];

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AppError';
    this.code = code;
    this.details = details;
  }
}

export function isAppError(e: unknown, code?: ErrorCode): e is AppError {
  return e instanceof AppError && (code === undefined || e.code === code);
}

/** A short, log-safe description of anything thrown. Never includes stack frames or payloads. */
export function describeError(e: unknown): { code: string; message: string } {
  if (e instanceof AppError) return { code: e.code, message: e.message };
  if (e instanceof Error) return { code: (e as NodeJS.ErrnoException).code ?? 'INTERNAL', message: e.message };
  return { code: 'INTERNAL', message: String(e) };
}

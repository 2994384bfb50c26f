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

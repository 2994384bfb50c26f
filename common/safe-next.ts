/**
 * Only local absolute paths: `next` must not send the user to another site after signing in.
 * Browsers drop tabs/newlines and read `\` as `/` in URLs, so "/<TAB>/evil" or "/\evil" would
 * become "//evil" (another host): no control characters or backslashes at all.
 * Pure (no agent imports): the fleet's dashboard uses the same check.
 */
export function safeNext(n: unknown): string {
  return typeof n === 'string' && n.length < 2000 && /^\/(?!\/)[^\\\u0000-\u001f\u007f]*$/.test(n) ? n : '/';
}

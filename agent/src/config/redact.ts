/**
 * Which config keys hold secrets, and a copy of a config with them replaced. One rule for every
 * place a config leaves its owner: the device's config/reported (MQTT), the fleet dashboard, logs.
 * By key name, so a capability's new secret field is covered when it is named like one
 * (password, passphrase, secret, token, psk, apiKey, privateKey); `...File`/`...Path` fields name a
 * file, not the secret, and stay visible.
 */
const SECRET_KEY = /(password|passphrase|secret|token|psk|apikey|privatekey)$/i;

export const REDACTED = '[redacted]';

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Deep copy with every non-empty secret value replaced by REDACTED (empty ones stay empty: "not set" is not a secret). */
export function redactSecrets<T>(doc: T): T {
  const walk = (v: unknown, key: string | null): unknown => {
    if (key !== null && isSecretKey(key) && v !== null && v !== undefined && v !== '') return REDACTED;
    if (Array.isArray(v)) return v.map((x) => walk(x, null));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    return v;
  };
  return walk(doc, null) as T;
}

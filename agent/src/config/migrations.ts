/**
 * Numbered config migrations: `from` N produces N+1. Version 1 is the first released format,
 * so the list is empty; add entries here, never edit old ones.
 */
export interface ConfigMigration {
  from: number;
  migrate(doc: Record<string, unknown>): Record<string, unknown>;
}

export const migrations: readonly ConfigMigration[] = [];

import { join } from 'node:path';
import type { FleetConfig } from '../config.js';
import { AccountStore } from './account-store.js';
import { CampaignStore } from './campaign-store.js';
import { ConfigStore } from './config-store.js';
import { DeviceStore } from './device-store.js';
import { InstanceStore } from './instance-store.js';
import { SqliteDriver, type SqlDriver } from './driver.js';
import { migrateStore } from './migrations.js';
import { OpsStore } from './ops-store.js';
import { PgDriver } from './pg-driver.js';

/**
 * The one storage interface: the same Store over either driver (SQLite embedded, PostgreSQL for
 * deployments); test/integration/fleet/store-contract.test.ts runs one contract against both.
 */
export class Store {
  readonly devices: DeviceStore;
  readonly accounts: AccountStore;
  readonly ops: OpsStore;
  readonly config: ConfigStore;
  readonly campaigns: CampaignStore;
  readonly instances: InstanceStore;

  private constructor(readonly driver: SqlDriver) {
    this.devices = new DeviceStore(driver);
    this.accounts = new AccountStore(driver);
    this.ops = new OpsStore(driver);
    this.config = new ConfigStore(driver);
    this.campaigns = new CampaignStore(driver);
    this.instances = new InstanceStore(driver);
  }

  static async open(driver: SqlDriver): Promise<Store> {
    await migrateStore(driver);
    return new Store(driver);
  }

  static async fromConfig(cfg: FleetConfig): Promise<Store> {
    const driver = cfg.db.kind === 'postgres' ? new PgDriver(cfg.db.url, cfg.db.poolSize) : new SqliteDriver(cfg.db.path || join(cfg.dataDir, 'fleet.db'));
    return Store.open(driver);
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}

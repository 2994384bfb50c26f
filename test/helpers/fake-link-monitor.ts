import type { LinkEvent, LinkMonitor } from '../../agent/src/platform/netlink-monitor.js';

/** Test double: the test calls emit(). */
export class FakeLinkMonitor implements LinkMonitor {
  private handler: ((e: LinkEvent) => void) | undefined;
  start(onEvent: (e: LinkEvent) => void): void {
    this.handler = onEvent;
  }
  stop(): void {
    this.handler = undefined;
  }
  emit(e: LinkEvent): void {
    this.handler?.(e);
  }
}

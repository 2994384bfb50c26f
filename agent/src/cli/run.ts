import { Agent } from '../agent.js';
import { formatProblems, loadConfig } from '../config/load.js';
import { isAppError } from '../../../common/errors.js';
import { adoptTimeZone } from '../../../common/zoned-time.js';
import { DEFAULT_CONFIG_PATH, configPathFrom, parse } from '../core/cli-args.js';
import type { CliCommand } from '../core/cli-command.js';
import type { ConfigProblem } from '../config/load.js';
import { ProcessRunner } from '../platform/command.js';
import { SystemdNotifier } from '../platform/service-notify.js';

export const runCommand: CliCommand = {
  summary: `run [--config FILE]: run the agent (default ${DEFAULT_CONFIG_PATH}; embedded defaults when absent)`,
  async run(args) {
    const { values } = parse(args, { config: { type: 'string', short: 'c' } });
    const path = configPathFrom(values.config);
    let config;
    try {
      config = loadConfig(path);
    } catch (e) {
      if (isAppError(e, 'CONFIG_INVALID')) {
        const problems = (e.details?.problems ?? []) as ConfigProblem[];
        process.stderr.write(`surgery-edge: refusing to start: ${e.message}\n${formatProblems(problems)}\n`);
        return 2;
      }
      throw e;
    }
    // The practice time zone becomes the process's own, so every time the box shows (status page,
    // records viewer, "as of") is formatted without loading ICU's formatting data (common/zoned-time.ts).
    const zoneAdopted = adoptTimeZone(config.records.timeZone);
    const agent = new Agent({ config, configPath: path });
    if (!zoneAdopted)
      agent.log.warn('records.timeZone is not a canonical time zone name; times are formatted through Intl', { timeZone: config.records.timeZone });
    await agent.start();
    agent.log.info('agent running', { deviceId: config.site.deviceId, config: path ?? '(embedded defaults)', bootId: agent.bootId });
    // Under systemd (Type=notify): READY once every capability was started (or reported failed),
    // then the watchdog from this event loop, so a wedged loop is restarted by systemd.
    const notifier = new SystemdNotifier(new ProcessRunner());
    const notifyFailed = (e: unknown) => agent.log.warn('systemd notify failed', { error: (e as Error).message });
    await notifier.ready(`running ${agent.bootId}`).catch(notifyFailed);
    const watchdog = notifier.watchdogIntervalMs ? setInterval(() => void notifier.watchdog().catch(notifyFailed), notifier.watchdogIntervalMs) : undefined;
    // Capabilities' timers are unref'd (so tests exit cleanly); this keeps the daemon alive until a signal.
    const keepAlive = setInterval(() => {}, 1 << 30);
    const code = await new Promise<number>((resolve) => {
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        agent.log.info('stopping', { signal });
        clearInterval(watchdog);
        void notifier.stopping().catch(notifyFailed);
        const force = setTimeout(() => {
          agent.log.error('stop took longer than 15 s; exiting anyway');
          resolve(1);
        }, 15_000);
        agent.stop(signal).then(
          () => {
            clearTimeout(force);
            resolve(0);
          },
          (e: unknown) => {
            clearTimeout(force);
            agent.log.error('stop failed', { error: (e as Error).message });
            resolve(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
    clearInterval(keepAlive);
    // Everything durable was closed by agent.stop(); a library's lingering socket or timer must not
    // keep a stopped agent alive (systemd would wait for its stop timeout, tests would hang).
    process.exit(code);
  },
};

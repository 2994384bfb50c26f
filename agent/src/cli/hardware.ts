import type { CliCommand } from '../core/cli-command.js';

/**
 * `surgery-edge hardware [--json]`: the box's hardware inventory (board, CPU, memory, disks, network
 * interfaces) for an engineer on site or a support ticket. It is the one place systeminformation is
 * used: imported here, in this short-lived process, so its ~10 MB of modules never sit in the
 * running agent (the agent's 15 s health figures come from /proc: platform/system-info.ts).
 */
export const hardwareCommand: CliCommand = {
  summary: 'hardware [--json]: the hardware inventory (board, CPU, memory, disks, network interfaces)',
  async run(args) {
    const si = (await import('systeminformation')).default;
    const [system, cpu, mem, disks, nets, os] = await Promise.all([
      si.system().catch(() => null),
      si.cpu().catch(() => null),
      si.mem().catch(() => null),
      si.diskLayout().catch(() => []),
      si.networkInterfaces().catch(() => []),
      si.osInfo().catch(() => null),
    ]);
    const inventory = {
      board: system ? { manufacturer: system.manufacturer, model: system.model, serial: system.serial, raspberry: system.raspberry ?? null } : null,
      cpu: cpu ? { brand: `${cpu.manufacturer} ${cpu.brand}`.trim(), cores: cpu.cores, speedGHz: cpu.speed } : null,
      memoryBytes: mem?.total ?? null,
      disks: disks.map((d) => ({ device: d.device, type: d.type, name: d.name, sizeBytes: d.size })),
      interfaces: (Array.isArray(nets) ? nets : [nets]).map((n) => ({
        name: n.iface,
        mac: n.mac,
        type: n.type,
        speedMbit: n.speed && n.speed > 0 ? n.speed : null,
      })),
      os: os ? `${os.distro} ${os.release} (${os.kernel}, ${os.arch})` : null,
    };
    if (args.includes('--json')) {
      process.stdout.write(JSON.stringify(inventory, null, 1) + '\n');
      return 0;
    }
    const gb = (b: number) => `${(b / 1e9).toFixed(1)} GB`;
    const lines = [
      `board:      ${inventory.board ? `${inventory.board.manufacturer} ${inventory.board.model}`.trim() || 'unknown' : 'unknown'}`,
      `cpu:        ${inventory.cpu ? `${inventory.cpu.brand}, ${inventory.cpu.cores} cores` : 'unknown'}`,
      `memory:     ${inventory.memoryBytes ? gb(inventory.memoryBytes) : 'unknown'}`,
      `os:         ${inventory.os ?? 'unknown'}`,
      ...inventory.disks.map((d) => `disk:       ${d.device} ${d.type} ${d.name} ${gb(d.sizeBytes)}`.replace(/\s+/g, ' ')),
      ...inventory.interfaces.map((n) => `interface:  ${n.name} ${n.type} ${n.mac}${n.speedMbit ? ` ${n.speedMbit} Mbit/s` : ''}`),
    ];
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  },
};

// The pod network inside a launcher pod, as upstream wires it:
//   masquerade: bridge k6t-eth0 (10.0.2.1/24) with the guest's tap; the guest
//     gets 10.0.2.2 by DHCP; NAT forwards the pod IP's traffic (all of it, or
//     only the declared ports) to the guest and masquerades what it sends.
//   bridge: the pod's eth0 joins a bridge with the tap and the guest takes
//     over the pod's IP and MAC (eth0 gets a new MAC).
// The plan is pure; ./launcher-host.ts runs its commands inside the pod's
// network namespace.
import { createHash } from 'node:crypto';
import { NON_ROOT_UID } from '../api/constants.ts';
import type { VirtualMachineInstance, VirtualMachineInstanceStatus } from '../api/types.ts';
import type { NetworkAttachment, NodeContext } from '../contract/launcher-protocol.ts';
import { sanitizeHostname } from '../contract/vmi.ts';

export const BRIDGE = 'k6t-eth0';
export const TAP = 'tap0';
export const MASQUERADE = { gateway: '10.0.2.1', guest: '10.0.2.2', prefixLength: 24 };
/** The bridge's address in bridge binding: link-local, only for answering DHCP. */
export const BRIDGE_DHCP_SERVER = '169.254.75.10';

export interface PodInterface {
  ip: string;
  prefixLength: number;
  gateway?: string;
  mac: string;
  mtu: number;
}

export interface NetworkPlan {
  /** Commands (argv) to run in the pod's network namespace, in order. */
  commands: string[][];
  attachments: Record<string, NetworkAttachment>;
  dhcp: NonNullable<NodeContext['dhcp']>;
  interfaces: NonNullable<VirtualMachineInstanceStatus['interfaces']>;
}

/** A stable, locally administered MAC for a VMI's interface when the spec names none. */
export function generatedMac(vmiUid: string, iface: string): string {
  const h = createHash('sha256').update(`${vmiUid}/${iface}`).digest();
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

const normalizeMac = (mac: string) => mac.toLowerCase().replace(/-/g, ':');

export class UnsupportedNetworkError extends Error {}

export function planPodNetwork(vmi: VirtualMachineInstance, pod: PodInterface): NetworkPlan {
  const plan: NetworkPlan = { commands: [], attachments: {}, dhcp: [], interfaces: [] };
  const podNetwork = vmi.spec.networks?.find((n) => n.pod);
  const iface = podNetwork && vmi.spec.domain.devices.interfaces?.find((i) => i.name === podNetwork.name);
  if (!podNetwork || !iface) return plan;
  const tap = ['ip', 'tuntap', 'add', 'dev', TAP, 'mode', 'tap', 'user', String(NON_ROOT_UID), 'group', String(NON_ROOT_UID)];
  const hostname = sanitizeHostname(vmi);
  if (iface.masquerade) {
    const mac = normalizeMac(iface.macAddress ?? generatedMac(vmi.metadata.uid!, iface.name));
    const { gateway, guest, prefixLength } = MASQUERADE;
    plan.commands.push(
      ['sysctl', '-w', 'net.ipv4.ip_forward=1'],
      // The launcher answers DHCP on port 67 without any capability.
      ['sysctl', '-w', 'net.ipv4.ip_unprivileged_port_start=0'],
      ['ip', 'link', 'add', BRIDGE, 'type', 'bridge'],
      ['ip', 'link', 'set', BRIDGE, 'mtu', String(pod.mtu)],
      ['ip', 'addr', 'add', `${gateway}/${prefixLength}`, 'dev', BRIDGE],
      ['ip', 'link', 'set', BRIDGE, 'up'],
      tap,
      ['ip', 'link', 'set', TAP, 'mtu', String(pod.mtu), 'master', BRIDGE, 'up'],
      ['ip', 'neigh', 'replace', guest, 'lladdr', mac, 'dev', BRIDGE, 'nud', 'permanent'],
      ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-s', guest, '-o', 'eth0', '-j', 'MASQUERADE'],
    );
    const ports = iface.ports ?? [];
    if (ports.length === 0) {
      plan.commands.push(['iptables', '-t', 'nat', '-A', 'PREROUTING', '-i', 'eth0', '-j', 'DNAT', '--to-destination', guest]);
    } else {
      for (const port of ports) {
        const protocol = (port.protocol ?? 'TCP').toLowerCase();
        plan.commands.push([
          'iptables',
          '-t',
          'nat',
          '-A',
          'PREROUTING',
          '-i',
          'eth0',
          '-p',
          protocol,
          '--dport',
          String(port.port),
          '-j',
          'DNAT',
          '--to-destination',
          guest,
        ]);
      }
    }
    plan.attachments[iface.name] = { tap: TAP, mac };
    plan.dhcp.push({ mac, ip: guest, prefixLength, router: gateway, serverIp: gateway, hostname, mtu: pod.mtu });
    plan.interfaces.push({
      name: iface.name,
      mac,
      ipAddress: pod.ip,
      ipAddresses: [pod.ip],
      podInterfaceName: 'eth0',
      infoSource: 'domain',
      queueCount: 1,
      linkState: 'up',
    });
    return plan;
  }
  if (iface.bridge) {
    // The guest takes the pod's MAC (what the CNI knows) unless the spec names one.
    const mac = normalizeMac(iface.macAddress ?? pod.mac);
    const podMac = generatedMac(vmi.metadata.uid!, `${iface.name}/pod`);
    plan.commands.push(
      ['sysctl', '-w', 'net.ipv4.ip_unprivileged_port_start=0'],
      ['ip', 'addr', 'flush', 'dev', 'eth0'],
      ['ip', 'link', 'set', 'eth0', 'down'],
      ['ip', 'link', 'set', 'eth0', 'address', podMac],
      ['ip', 'link', 'add', BRIDGE, 'type', 'bridge'],
      ['ip', 'link', 'set', BRIDGE, 'mtu', String(pod.mtu)],
      ['ip', 'link', 'set', 'eth0', 'master', BRIDGE, 'up'],
      // The node's CNI bridge sends the guest's broadcasts back (hairpin); learning them on eth0 would
      // put the guest's MAC on the wrong port, and neither DHCP replies nor the pod network would reach it.
      ['ip', 'link', 'set', 'dev', 'eth0', 'type', 'bridge_slave', 'learning', 'off'],
      ['ip', 'addr', 'add', `${BRIDGE_DHCP_SERVER}/32`, 'dev', BRIDGE],
      ['ip', 'link', 'set', BRIDGE, 'up'],
      tap,
      ['ip', 'link', 'set', TAP, 'mtu', String(pod.mtu), 'master', BRIDGE, 'up'],
      ['ip', 'route', 'add', `${pod.ip}/32`, 'dev', BRIDGE],
      ['ip', 'neigh', 'replace', pod.ip, 'lladdr', mac, 'dev', BRIDGE, 'nud', 'permanent'],
    );
    plan.attachments[iface.name] = { tap: TAP, mac };
    plan.dhcp.push({
      mac,
      ip: pod.ip,
      prefixLength: pod.prefixLength,
      router: pod.gateway,
      serverIp: BRIDGE_DHCP_SERVER,
      hostname,
      mtu: pod.mtu,
    });
    plan.interfaces.push({
      name: iface.name,
      mac,
      ipAddress: pod.ip,
      ipAddresses: [pod.ip],
      podInterfaceName: 'eth0',
      infoSource: 'domain',
      queueCount: 1,
      linkState: 'up',
    });
    return plan;
  }
  throw new UnsupportedNetworkError(
    `spec.domain.devices.interfaces[${vmi.spec.domain.devices.interfaces!.indexOf(iface)}]: only the masquerade and bridge bindings are supported on the pod network`,
  );
}

/** The pod's eth0, from `ip -j addr show dev eth0` and `ip -j route show default`. */
export function parsePodInterface(addrJson: string, routeJson: string): PodInterface {
  const [link] = JSON.parse(addrJson) as {
    address: string;
    mtu: number;
    addr_info: { family: string; local: string; prefixlen: number }[];
  }[];
  const inet = link.addr_info.find((a) => a.family === 'inet');
  if (!inet) throw new Error('the pod has no IPv4 address on eth0');
  const [route] = JSON.parse(routeJson) as { gateway?: string }[];
  return { ip: inet.local, prefixLength: inet.prefixlen, gateway: route?.gateway, mac: link.address, mtu: link.mtu };
}

/**
 * A plan's commands as one shell script that starts as few processes as the
 * tools allow, order kept: sysctls written by the shell itself, each run of ip
 * commands in one `ip -batch`, each run of iptables rules in one
 * `iptables-restore --noflush`. Under load, every process start costs more
 * than what it does. `toolPath` names the binary to run for a tool.
 */
export function networkScript(commands: string[][], toolPath: (tool: string) => string): string {
  const lines: string[] = [];
  for (let i = 0; i < commands.length; ) {
    const tool = commands[i][0];
    let end = i;
    while (end < commands.length && commands[end][0] === tool) end++;
    const run = commands.slice(i, end).map((argv) => argv.slice(1));
    i = end;
    if (tool === 'sysctl') {
      for (const args of run) {
        const [key, value] = args
          .filter((a) => a !== '-w')
          .join('')
          .split('=');
        lines.push(`echo ${value} > /proc/sys/${key.replace(/\./g, '/')}`);
      }
    } else if (tool === 'ip') {
      lines.push(`${toolPath('ip')} -batch - <<'EOF'`, ...run.map((args) => args.join(' ')), 'EOF');
    } else if (tool === 'iptables') {
      const tables = new Map<string, string[]>();
      for (const args of run) {
        const at = args.indexOf('-t');
        const table = at >= 0 ? args[at + 1] : 'filter';
        const rule = at >= 0 ? [...args.slice(0, at), ...args.slice(at + 2)] : args;
        tables.set(table, [...(tables.get(table) ?? []), rule.join(' ')]);
      }
      lines.push(
        `${toolPath('iptables-restore')} --noflush <<'EOF'`,
        ...[...tables].flatMap(([table, rules]) => [`*${table}`, ...rules, 'COMMIT']),
        'EOF',
      );
    } else {
      throw new Error(`no way to run ${tool} in a network script`);
    }
  }
  return lines.join('\n');
}

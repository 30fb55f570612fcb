// The DHCP server a guest on the pod network talks to: one fixed lease per
// interface, answered from inside the launcher pod (as upstream's launcher
// does), so the guest configures its network the usual way. Replies are
// unicast to the leased address; virt-handler adds the neighbour entry that
// makes that possible before the guest has an address.
import { createSocket, type Socket } from 'node:dgram';
import type { NodeDhcpLease } from '../contract/launcher-protocol.ts';

export interface DhcpLease extends NodeDhcpLease {
  dns: string[];
  searchDomains: string[];
}

export const DHCP = { DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8 } as const;
const MAGIC = 0x63825363;
const LEASE_SECONDS = 86400 * 365;

export interface DhcpRequest {
  xid: number;
  flags: number;
  mac: string;
  type: number;
  requestedIp?: string;
  chaddr: Buffer;
}

const ip4 = (b: Buffer, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
const ipBytes = (ip: string) => ip.split('.').map(Number);

export function parseRequest(packet: Buffer): DhcpRequest | undefined {
  if (packet.length < 240 || packet[0] !== 1 || packet.readUInt32BE(236) !== MAGIC) return undefined;
  const hlen = Math.min(packet[2], 16);
  const chaddr = packet.subarray(28, 44);
  const mac = [...chaddr.subarray(0, hlen)].map((b) => b.toString(16).padStart(2, '0')).join(':');
  let type = 0;
  let requestedIp: string | undefined;
  for (let i = 240; i < packet.length; ) {
    const code = packet[i];
    if (code === 255) break;
    if (code === 0) {
      i++;
      continue;
    }
    const len = packet[i + 1];
    const value = packet.subarray(i + 2, i + 2 + len);
    if (code === 53) type = value[0];
    if (code === 50 && len === 4) requestedIp = ip4(value, 0);
    i += 2 + len;
  }
  return { xid: packet.readUInt32BE(4), flags: packet.readUInt16BE(10), mac, type, requestedIp, chaddr: Buffer.from(chaddr) };
}

function prefixToMask(prefix: number): number[] {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [mask >>> 24, (mask >>> 16) & 255, (mask >>> 8) & 255, mask & 255];
}

/** RFC 1035 name encoding, for option 119 (domain search). */
function encodeNames(names: string[]): number[] {
  return names.flatMap((name) => [
    ...name
      .split('.')
      .filter(Boolean)
      .flatMap((label) => [label.length, ...Buffer.from(label)]),
    0,
  ]);
}

export function buildReply(request: DhcpRequest, lease: DhcpLease, type: number): Buffer {
  const head = Buffer.alloc(240);
  head[0] = 2; // BOOTREPLY
  head[1] = 1;
  head[2] = 6;
  head.writeUInt32BE(request.xid, 4);
  head.writeUInt16BE(request.flags, 10);
  if (type !== DHCP.NAK) Buffer.from(ipBytes(lease.ip)).copy(head, 16);
  Buffer.from(ipBytes(lease.serverIp)).copy(head, 20);
  request.chaddr.copy(head, 28);
  head.writeUInt32BE(MAGIC, 236);
  const options: number[] = [53, 1, type, 54, 4, ...ipBytes(lease.serverIp)];
  const u32 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  if (type !== DHCP.NAK) {
    options.push(51, 4, ...u32(LEASE_SECONDS), 58, 4, ...u32(LEASE_SECONDS / 2), 59, 4, ...u32((LEASE_SECONDS * 7) / 8));
    options.push(1, 4, ...prefixToMask(lease.prefixLength));
    if (lease.router) options.push(3, 4, ...ipBytes(lease.router));
    if (lease.dns.length) options.push(6, lease.dns.length * 4, ...lease.dns.flatMap(ipBytes));
    if (lease.searchDomains.length) {
      const domain = Buffer.from(lease.searchDomains[0]);
      options.push(15, domain.length, ...domain);
      const search = encodeNames(lease.searchDomains);
      if (search.length <= 255) options.push(119, search.length, ...search);
    }
    if (lease.hostname) {
      const name = Buffer.from(lease.hostname.slice(0, 63));
      options.push(12, name.length, ...name);
    }
    if (lease.mtu) options.push(26, 2, lease.mtu >>> 8, lease.mtu & 255);
  }
  options.push(255);
  return Buffer.concat([head, Buffer.from(options)]);
}

/** The reply to a request, if any: offers and acks for the lease of the sender's MAC, a NAK for a wrong address. */
export function answer(request: DhcpRequest, leases: DhcpLease[]): { reply: Buffer; to: string } | undefined {
  const lease = leases.find((l) => l.mac === request.mac);
  if (!lease) return undefined;
  if (request.type === DHCP.DISCOVER) return { reply: buildReply(request, lease, DHCP.OFFER), to: lease.ip };
  if (request.type === DHCP.REQUEST) {
    const ok = !request.requestedIp || request.requestedIp === lease.ip;
    return { reply: buildReply(request, lease, ok ? DHCP.ACK : DHCP.NAK), to: lease.ip };
  }
  return undefined;
}

/** Serves the leases on UDP port 67 until closed. */
export function serveDhcp(leases: DhcpLease[], onError: (error: Error) => void): Socket {
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  socket.on('message', (packet) => {
    const request = parseRequest(packet);
    const result = request && answer(request, leases);
    if (result) socket.send(result.reply, 68, result.to, (error) => error && onError(error));
  });
  socket.on('error', onError);
  socket.bind(67, '0.0.0.0');
  return socket;
}

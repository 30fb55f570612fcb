// Network interfaces: each one's NIC model, MAC and boot order, on the tap
// virt-handler made for it or on QEMU's user-mode network.
import type { Interface } from '../../api/types.ts';
import { type Concern, type ConversionContext, ConversionError } from './plan.ts';
import { opts } from './qemu-options.ts';

const MODELS: Record<string, string> = {
  virtio: 'virtio-net-pci',
  e1000: 'e1000',
  e1000e: 'e1000e',
  rtl8139: 'rtl8139',
  igb: 'igb',
  ne2k_pci: 'ne2k_pci',
  pcnet: 'pcnet',
};

function interfaceArgs(iface: Interface, i: number, ctx: ConversionContext): string[] {
  const field = `spec.domain.devices.interfaces[${i}]`;
  if (iface.sriov || iface.binding || iface.passtBinding) {
    const kind = iface.sriov ? 'sriov' : iface.binding ? 'binding' : 'passtBinding';
    throw new ConversionError(`${field}.${kind}`, `the ${kind} binding is not available on this node`);
  }
  const attachment = ctx.interfaces[iface.name];
  if (!attachment) throw new ConversionError(`${field}.name`, `the network of interface ${iface.name} was not prepared on the node`);
  const model = MODELS[iface.model ?? 'virtio'];
  if (!model) throw new ConversionError(`${field}.model`, `model ${iface.model} is not supported`);
  const netdev = `net-${iface.name}`;
  let backend: string;
  if ('tap' in attachment) {
    backend = opts('tap', { id: netdev, ifname: attachment.tap, script: 'no', downscript: 'no', vhost: ctx.kvm ? 'on' : undefined });
  } else {
    const forwards = (attachment.user.hostForwards ?? []).map((fw) => `hostfwd=${fw.protocol}:127.0.0.1:${fw.hostPort}-:${fw.guestPort}`);
    backend = [opts('user', { id: netdev }), ...forwards].join(',');
  }
  // The MAC virt-handler leased for the tap, unless the spec names one.
  const mac = iface.macAddress ?? ('tap' in attachment ? attachment.mac : undefined);
  return ['-netdev', backend, '-device', opts(model, { netdev, id: `ua-${iface.name}`, mac, bootindex: iface.bootOrder })];
}

export const interfaces: Concern = (vmi, ctx) => ({
  argv: (vmi.spec.domain.devices?.interfaces ?? []).flatMap((iface, i) => interfaceArgs(iface, i, ctx)),
});

// Network and interface validation of a VMI spec (upstream's pkg/network/admitter).
import type { Interface, Network, VirtualMachineInstanceSpec } from '../types.ts';
import type { ClusterConfig } from '../cluster-config.ts';
import { type FieldPath, invalid, required, duplicate, notSupported, type StatusCause } from '../causes.ts';
import { isIPv4, isPciAddress, isValidPortName, macOctets } from './k8s-names.ts';

const INTERFACE_MODELS = ['e1000', 'e1000e', 'igb', 'ne2k_pci', 'pcnet', 'rtl8139', 'virtio'];
const INTERFACE_NAME = /^[A-Za-z0-9-_]+$/;
const MASQUERADE_BRIDGE_MAC = '02:00:00:00:00:00';
const LINK_STATES = ['', 'up', 'down', 'absent'];

const bindingCount = (iface: Interface) =>
  [iface.bridge, iface.masquerade, iface.sriov, iface.passtBinding, iface.binding].filter(Boolean).length;

export function validateNetworking(field: FieldPath, spec: VirtualMachineInstanceSpec, config: ClusterConfig): StatusCause[] {
  const causes: StatusCause[] = [];
  const networks = spec.networks ?? [];
  const interfaces = spec.domain?.devices?.interfaces ?? [];
  const ifaceField = (i: number) => field.child('domain', 'devices', 'interfaces').index(i);
  const networksByName = new Map<string, Network>();
  for (const n of networks) if (!networksByName.has(n.name)) networksByName.set(n.name, n);

  const podNetworks = networks.filter((n) => n.pod);
  const multusDefaults = networks.filter((n) => n.multus?.default);
  if (podNetworks.length > 1) {
    causes.push(
      duplicate(field.child('interfaces'), `more than one interface is connected to a pod network in ${field.child('interfaces')}`),
    );
  }
  if (multusDefaults.length > 1) causes.push(invalid(field.child('networks'), 'Multus CNI should only have one default network'));
  if (podNetworks.length > 0 && multusDefaults.length > 0) {
    causes.push(invalid(field.child('networks'), 'Pod network cannot be defined when Multus default network is defined'));
  }
  for (const [i, network] of networks.entries()) {
    const sources = [network.pod, network.multus, network.resourceClaim].filter(Boolean).length;
    if (sources === 0) causes.push(required(field.child('networks').index(i), 'should have a network type'));
    else if (sources > 1) causes.push(required(field.child('networks').index(i), 'should have only one network type'));
    else if (network.multus && !network.multus.networkName) {
      causes.push(required(field.child('networks').index(i), 'CNI delegating plugin must have a networkName'));
    }
  }
  for (const [i, iface] of interfaces.entries()) {
    if (!LINK_STATES.includes(iface.state ?? '')) {
      causes.push(notSupported(ifaceField(i).child('state'), `logical ${iface.name} interface state value is unsupported: ${iface.state}`));
    } else if (iface.state && iface.state !== 'up' && !iface.bridge) {
      causes.push(
        notSupported(
          ifaceField(i).child('state'),
          `"${iface.name}" interface's state "${iface.state}" is supported only for bridge binding`,
        ),
      );
    }
  }
  for (const [i, iface] of interfaces.entries()) {
    const network = networksByName.get(iface.name);
    if (bindingCount(iface) !== 1) {
      causes.push(invalid(ifaceField(i), `logical ${iface.name} interface must have exactly one binding method or binding plugin`));
    }
    if (iface.masquerade && !network?.pod)
      causes.push(invalid(ifaceField(i).child('name'), 'Masquerade interface only implemented with pod network'));
    if (iface.masquerade && iface.macAddress === MASQUERADE_BRIDGE_MAC) {
      causes.push(
        invalid(
          ifaceField(i).child('macAddress'),
          'The requested MAC address is reserved for the in-pod bridge. Please choose another one.',
        ),
      );
    }
    if (iface.bridge && network?.pod && !config.permitBridgeInterfaceOnPodNetwork) {
      causes.push(invalid(ifaceField(i).child('name'), 'Bridge on pod network configuration is not enabled under kubevirt-config'));
    }
    if (iface.passtBinding) {
      if (!config.isFeatureGateEnabled('PasstBinding'))
        causes.push(invalid(ifaceField(i).child('name'), 'PasstBinding feature gate is not enabled'));
      else if (!network?.pod) causes.push(invalid(ifaceField(i).child('name'), 'PasstBinding interface only implemented with pod network'));
    }
    if (iface.binding && !Object.hasOwn(config.networkBindings, iface.binding.name)) {
      causes.push(
        invalid(
          ifaceField(i).child('binding', 'name'),
          `logical ${iface.name} interface requested a binding plugin that does not exist: ${iface.binding.name}`,
        ),
      );
    }
  }
  const seenNetworks = new Set<string>();
  for (const [i, network] of networks.entries()) {
    if (seenNetworks.has(network.name)) {
      causes.push(
        duplicate(
          field.child('networks').index(i).child('name'),
          `Network with name "${network.name}" already exists, every network must have a unique name`,
        ),
      );
    }
    seenNetworks.add(network.name);
  }
  const interfaceNames = new Set(interfaces.map((iface) => iface.name));
  for (const [i, network] of networks.entries()) {
    if (!interfaceNames.has(network.name)) {
      const f = field.child('networks').index(i).child('name');
      causes.push(required(f, `${f} '${network.name}' not found.`));
    }
  }
  const seenInterfaces = new Set<string>();
  for (const [i, iface] of interfaces.entries()) {
    if (seenInterfaces.has(iface.name)) {
      causes.push(duplicate(ifaceField(i).child('name'), 'Only one interface can be connected to one specific network'));
    }
    seenInterfaces.add(iface.name);
  }
  for (const [i, iface] of interfaces.entries()) {
    if (!networksByName.has(iface.name)) {
      const f = ifaceField(i).child('name');
      causes.push(invalid(f, `${f} '${iface.name}' not found.`));
    }
  }
  for (const [i, iface] of interfaces.entries())
    causes.push(...validateInterfaceFields(ifaceField(i), iface, networksByName.get(iface.name)));
  for (const [i, iface] of interfaces.entries()) {
    const f = ifaceField(i);
    if (iface.slirp) causes.push(invalid(f.child('slirp'), 'Slirp interface support has been discontinued since v1.3'));
    if (iface.passt) causes.push(invalid(f.child('passt'), 'Passt network binding has been discontinued since v1.3'));
    if (iface.macvtap) causes.push(invalid(f.child('macvtap'), 'Macvtap network binding has been discontinued since v1.3'));
  }
  return causes;
}

function validateInterfaceFields(f: FieldPath, iface: Interface, network: Network | undefined): StatusCause[] {
  const causes: StatusCause[] = [];
  if (!INTERFACE_NAME.test(iface.name)) {
    causes.push(
      invalid(f.child('name'), 'Network interface name can only contain alphabetical characters, numbers, dashes (-) or underscores (_)'),
    );
  }
  if (iface.model && !INTERFACE_MODELS.includes(iface.model)) {
    causes.push(notSupported(f.child('model'), `interface ${f.child('name')} uses model ${iface.model} that is not supported.`));
  }
  if (iface.macAddress) {
    const octets = macOctets(iface.macAddress);
    if (octets === undefined)
      causes.push(invalid(f.child('macAddress'), `interface ${f.child('name')} has malformed MAC address (${iface.macAddress}).`));
    else if (octets > 6)
      causes.push(invalid(f.child('macAddress'), `interface ${f.child('name')} has too long MAC address (${iface.macAddress}).`));
  }
  if (iface.pciAddress && !isPciAddress(iface.pciAddress)) {
    causes.push(invalid(f.child('pciAddress'), `interface ${f.child('name')} has malformed PCI address (${iface.pciAddress}).`));
  }
  if (network?.pod && iface.ports) {
    const names = new Set<string>();
    for (const [p, port] of iface.ports.entries()) {
      const pf = f.child('ports').index(p);
      if (port.name) {
        if (names.has(port.name)) causes.push(duplicate(pf.child('name'), `Duplicate name of the port: ${port.name}`));
        if (!isValidPortName(port.name)) causes.push(invalid(pf.child('name'), `Invalid name of the port: ${port.name}`));
        names.add(port.name);
      }
    }
    for (const [p, port] of iface.ports.entries()) {
      const pf = f.child('ports').index(p);
      if (!port.port) causes.push(required(pf.child('port'), 'Port field is mandatory.'));
      if (port.port < 0 || port.port >= 65536) causes.push(invalid(pf.child('port'), 'Port field must be in range 0 < x < 65536.'));
      if (port.protocol && port.protocol !== 'TCP' && port.protocol !== 'UDP') {
        causes.push(invalid(pf.child('protocol'), 'Unknown protocol, only TCP or UDP allowed'));
      }
    }
  }
  if (iface.portRanges?.length) {
    causes.push(invalid(f.child('name'), 'portRanges is specified on interface but the PortRangesSpec feature gate is not enabled'));
  }
  const dhcp = iface.dhcpOptions;
  if (dhcp) {
    const options = dhcp.privateOptions ?? [];
    if (new Set(options.map((o) => o.option)).size !== options.length) {
      causes.push(invalid(f, 'Found Duplicates: you have provided duplicate DHCPPrivateOptions'));
    }
    if (options.some((o) => o.option < 224 || o.option > 254)) {
      causes.push(invalid(f, 'provided DHCPPrivateOptions are out of range, must be in range 224 to 254'));
    }
    for (const [n, ntp] of (dhcp.ntpServers ?? []).entries()) {
      if (!isIPv4(ntp))
        causes.push(invalid(f.child('dhcpOptions', 'ntpServers').index(n), 'NTP servers must be a list of valid IPv4 addresses.'));
    }
  }
  return causes;
}

// virtctl's arguments as upstream's virtctl reads them, and the objects it
// writes (create vm, expose). Pure: ./main.ts talks to the cluster.
import type { VirtualMachine, VirtualMachineInstance, VirtualMachineInstanceReplicaSet } from '../api/types.ts';
import { VMI_ID_LABEL } from '../api/constants.ts';
import { vmiId } from '../api/vmi-id.ts';

export class UsageError extends Error {}

export type TargetKind = 'vm' | 'vmi';
export interface Target {
  kind: TargetKind;
  name: string;
  namespace?: string;
}

const KINDS: Record<string, TargetKind> = {
  vm: 'vm',
  vms: 'vm',
  virtualmachine: 'vm',
  virtualmachines: 'vm',
  vmi: 'vmi',
  vmis: 'vmi',
  virtualmachineinstance: 'vmi',
  virtualmachineinstances: 'vmi',
};

/** `type/name[/namespace]`, as port-forward, ssh and scp take it. */
export function parseTarget(target: string): Target {
  if (!target) throw new UsageError('target cannot be empty');
  const parts = target.split('/');
  if (parts.length === 1) throw new UsageError("target must contain type and name separated by '/'");
  if (parts.length > 3) throw new UsageError("target is not valid with more than two '/'");
  const [kindText, name, namespace] = parts;
  const kind = KINDS[kindText.toLowerCase()];
  if (!kind) throw new UsageError(`unsupported resource type '${kindText}'`);
  if (!name) throw new UsageError('name cannot be empty');
  if (parts.length === 3 && !namespace) throw new UsageError('namespace cannot be empty');
  return { kind, name, ...(namespace && { namespace }) };
}

export interface ForwardedPort {
  protocol: string;
  local: number;
  remote: number;
}

const portNumber = (text: string) => {
  if (!/^\d+$/.test(text) || Number(text) > 65535) throw new UsageError(`invalid port "${text}": a port is a number from 0 to 65535`);
  return Number(text);
};

/** `[protocol/]localPort[:targetPort]`; the target port defaults to the local one. */
export function parsePort(arg: string): ForwardedPort {
  const [protocol, ports] = arg.includes('/') ? arg.split('/', 2) : ['tcp', arg];
  const [local, remote] = ports.split(':').filter(Boolean);
  if (local === undefined) throw new UsageError('invalid port, missing local and/or remote port');
  return { protocol: protocol.toLowerCase(), local: portNumber(local), remote: portNumber(remote ?? local) };
}

/** `[user@]type/name[/namespace]`, as ssh takes it. */
export function parseSshTarget(arg: string): Target & { user?: string } {
  const at = arg.indexOf('@');
  if (at === 0) throw new UsageError("expected username before '@'");
  const user = at > 0 ? arg.slice(0, at) : undefined;
  const target = parseTarget(at > 0 ? arg.slice(at + 1) : arg);
  return { ...target, ...(user && { user }) };
}

export interface ScpPlan {
  remote: Target & { user?: string; path: string };
  local: string;
  toRemote: boolean;
}

/** scp's two arguments: exactly one of them is `[user@]type/name[/namespace]:path`. */
export function parseScpArgs(source: string, destination: string): ScpPlan {
  const remoteOf = (arg: string) => {
    const colon = arg.indexOf(':');
    // A local path may contain ':' too, but never before a '/': the remote form starts with type/name.
    if (colon < 0 || !arg.slice(0, colon).includes('/')) return undefined;
    return { ...parseSshTarget(arg.slice(0, colon)), path: arg.slice(colon + 1) };
  };
  const [from, to] = [remoteOf(source), remoteOf(destination)];
  if (from && to) throw new UsageError('copying from a remote location to another remote location is not supported');
  if (!from && !to)
    throw new UsageError(
      'none of the two provided locations seems to be a remote location: use [user@]type/name[/namespace]:path for the remote one',
    );
  return from ? { remote: from, local: destination, toRemote: false } : { remote: to!, local: source, toRemote: true };
}

/** `key:value,key:value`, upstream's syntax for a volume flag's parameters. */
export function parseParams(flag: string, text: string, allowed: string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const pair of text.split(',').filter(Boolean)) {
    const colon = pair.indexOf(':');
    if (colon <= 0) throw new UsageError(`failed to parse "--${flag} ${text}": params need to have at least one colon: ${pair}`);
    const key = pair.slice(0, colon).toLowerCase();
    if (!allowed.includes(key)) throw new UsageError(`failed to parse "--${flag} ${text}": unknown param(s): ${pair}`);
    params[key] = pair.slice(colon + 1);
  }
  return params;
}

export interface CreateVmOptions {
  name: string;
  namespace?: string;
  runStrategy: string;
  terminationGracePeriod: number;
  memory: string;
  instancetype?: string;
  preference?: string;
  /** Infer the instance type (preference) from the boot volume (default true), or from the volume named. */
  inferInstancetype?: boolean;
  inferInstancetypeFrom?: string;
  inferPreference?: boolean;
  inferPreferenceFrom?: string;
  /** Whether the memory or an inference flag was given explicitly (inference errors then count, memory stays). */
  memoryGiven?: boolean;
  explicitInstancetypeInference?: boolean;
  explicitPreferenceInference?: boolean;
  containerdisks: string[];
  pvcs: string[];
  cloudInitUserData?: string;
  cloudInitNetworkData?: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** `[kind/]name` of an instance type or preference; the kind defaults to the cluster-wide one. */
function matcher(flag: string, text: string, kinds: [string, string]) {
  const [kind, name] = text.includes('/') ? text.split('/', 2) : ['', text];
  if (!name) throw new UsageError(`--${flag}: a name is required`);
  if (kind && !kinds.includes(kind.toLowerCase()))
    throw new UsageError(`--${flag}: invalid ${flag} kind "${kind.toLowerCase()}", supported values are: ${kinds.join(', ')}`);
  return { name, ...(kind && { kind: kind.toLowerCase() }) };
}

/**
 * Upstream's inference from a volume: the one named, else the one of the lowest boot order, else
 * the first; only a claim (or DataVolume) can carry the labels to infer from. Implicit inference
 * asks the cluster to ignore a failure; explicit inference fails here instead.
 */
function inferFrom(
  flag: string,
  explicitFrom: string | undefined,
  volumes: { name: string; persistentVolumeClaim?: unknown; dataVolume?: unknown }[],
  bootOrders: Map<number, string>,
): string {
  if (!volumes.length) throw new UsageError(`--${flag}: at least one volume is needed to infer an instance type or preference`);
  const name = explicitFrom ?? (bootOrders.size ? bootOrders.get(Math.min(...bootOrders.keys()))! : volumes[0].name);
  const volume = volumes.find((v) => v.name === name);
  if (!volume) throw new UsageError(`--${flag}: there is no volume with name "${name}"`);
  if (!volume.persistentVolumeClaim && !volume.dataVolume)
    throw new UsageError(`--${flag}: inference of instancetype or preference works only with datasources, datavolumes or pvcs`);
  return name;
}

/** The VirtualMachine `virtctl create vm` prints, as upstream builds it from the same flags. */
export function createVm(o: CreateVmOptions): VirtualMachine {
  const vm = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: o.name, ...(o.namespace && { namespace: o.namespace }) },
    spec: {
      runStrategy: o.runStrategy,
      template: {
        spec: {
          terminationGracePeriodSeconds: o.terminationGracePeriod,
          domain: { devices: {}, memory: { guest: o.memory } },
          volumes: [],
        },
      },
    },
  } as unknown as VirtualMachine;
  const spec = vm.spec.template!.spec!;
  const volumes = spec.volumes!;
  const disks: NonNullable<NonNullable<typeof spec.domain.devices>['disks']> = [];
  const bootOrders = new Map<number, string>();
  const addVolume = (flag: string, name: string, bootorder: string | undefined) => {
    if (!DNS_LABEL.test(name)) throw new UsageError(`--${flag}: invalid name "${name}": a volume name must be a DNS-1123 label`);
    if (volumes.some((v) => v.name === name)) throw new UsageError(`--${flag}: there is already a volume with name "${name}"`);
    if (bootorder === undefined) return;
    const order = Number(bootorder);
    if (!Number.isInteger(order) || order < 1) throw new UsageError(`--${flag}: bootorder must be greater than 0`);
    if (bootOrders.has(order)) throw new UsageError(`--${flag}: bootorder ${order} was specified multiple times`);
    bootOrders.set(order, name);
    disks.push({ name, bootOrder: order });
  };
  for (const [i, text] of o.containerdisks.entries()) {
    const p = parseParams('volume-containerdisk', text, ['name', 'src', 'bootorder']);
    if (!p.src) throw new UsageError('--volume-containerdisk: src must be specified');
    const name = p.name || `${o.name}-containerdisk-${i}`;
    addVolume('volume-containerdisk', name, p.bootorder);
    volumes.push({ name, containerDisk: { image: p.src } });
  }
  for (const text of o.pvcs) {
    const p = parseParams('volume-pvc', text, ['name', 'src', 'bootorder']);
    if (!p.src) throw new UsageError('--volume-pvc: src must be specified');
    if (p.src.includes('/')) throw new UsageError("--volume-pvc: src must be a claim in the VM's namespace (name only)");
    const name = p.name || p.src;
    addVolume('volume-pvc', name, p.bootorder);
    volumes.push({ name, persistentVolumeClaim: { claimName: p.src } });
  }
  if (o.cloudInitUserData !== undefined || o.cloudInitNetworkData !== undefined) {
    volumes.push({
      name: 'cloudinitdisk',
      cloudInitNoCloud: {
        ...(o.cloudInitUserData !== undefined && { userDataBase64: o.cloudInitUserData }),
        ...(o.cloudInitNetworkData !== undefined && { networkDataBase64: o.cloudInitNetworkData }),
      },
    });
  }
  if (disks.length) spec.domain.devices = { disks };
  if (o.instancetype) {
    vm.spec.instancetype = matcher('instancetype', o.instancetype, ['virtualmachineinstancetype', 'virtualmachineclusterinstancetype']);
    delete spec.domain.memory;
  }
  if (o.preference)
    vm.spec.preference = matcher('preference', o.preference, ['virtualmachinepreference', 'virtualmachineclusterpreference']);
  // Inference, as upstream: by default from the boot volume when it can be, the memory kept as a fallback.
  const infer = (which: 'instancetype' | 'preference', from: string | undefined, explicit: boolean | undefined) => {
    try {
      const volume = inferFrom(`infer-${which}${from ? '-from' : ''}`, from, volumes, bootOrders);
      vm.spec[which] = { inferFromVolume: volume, ...(explicit ? {} : { inferFromVolumeFailurePolicy: 'Ignore' }) };
      if (which === 'instancetype' && explicit) delete spec.domain.memory;
    } catch (error) {
      if (explicit) throw error;
    }
  };
  if (!o.instancetype && !o.memoryGiven && (o.inferInstancetype ?? true))
    infer('instancetype', o.inferInstancetypeFrom, o.explicitInstancetypeInference);
  if (!o.preference && (o.inferPreference ?? true)) infer('preference', o.inferPreferenceFrom, o.explicitPreferenceInference);
  if (!volumes.length) delete spec.volumes;
  return vm;
}

export interface ExposeOptions {
  serviceName: string;
  port?: number;
  targetPort?: string;
  protocol: string;
  type: string;
  portName?: string;
  clusterIp?: string;
  externalIp?: string;
}

export type Exposable =
  | { kind: 'vmi'; object: VirtualMachineInstance }
  | { kind: 'vm'; object: VirtualMachine }
  | { kind: 'vmirs'; object: VirtualMachineInstanceReplicaSet };

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer'];
type Spec = VirtualMachineInstance['spec'];

/** The ports the pod-network interface declares, the Service's ports when --port is not given. */
function podNetworkPorts(spec: Spec | undefined) {
  const network = spec?.networks?.find((n) => n.pod);
  const iface = spec?.domain.devices?.interfaces?.find((i) => i.name === network?.name);
  return (iface?.ports ?? []).map((p) => ({ ...(p.name && { name: p.name }), protocol: p.protocol ?? 'TCP', port: p.port }));
}

/**
 * The Service `virtctl expose` creates, as upstream's: a VMI or a VM is
 * selected by its launcher pod's vmi.kubevirt.io/id label, a replica set by its
 * selector's labels; the ports come from --port or the pod network interface;
 * the object owns the Service.
 */
export function exposeService(target: Exposable, o: ExposeOptions) {
  const protocol = ['tcp', 'udp'].includes(o.protocol.toLowerCase()) ? o.protocol.toUpperCase() : undefined;
  if (!protocol) throw new UsageError(`unknown protocol: ${o.protocol}`);
  const type = SERVICE_TYPES.find((t) => t.toLowerCase() === o.type.toLowerCase());
  if (!type)
    throw new UsageError(o.type.toLowerCase() === 'externalname' ? `type: ${o.type} not supported` : `unknown service type: ${o.type}`);
  const { metadata } = target.object;
  let selector: Record<string, string>;
  let ports: ReturnType<typeof podNetworkPorts>;
  let kind: string;
  if (target.kind === 'vmirs') {
    const rs = target.object.spec;
    if (!rs.selector?.matchLabels || !Object.keys(rs.selector.matchLabels).length)
      throw new UsageError('cannot expose VirtualMachineInstanceReplicaSet without any selector labels');
    if (rs.selector.matchExpressions?.length) throw new UsageError('cannot expose VirtualMachineInstanceReplicaSet with match expressions');
    selector = rs.selector.matchLabels;
    ports = podNetworkPorts(rs.template?.spec as Spec | undefined);
    kind = 'VirtualMachineInstanceReplicaSet';
  } else {
    selector = { [VMI_ID_LABEL]: vmiId(metadata.name!) };
    ports = podNetworkPorts(target.kind === 'vmi' ? target.object.spec : (target.object.spec.template?.spec as Spec | undefined));
    kind = target.kind === 'vmi' ? 'VirtualMachineInstance' : 'VirtualMachine';
  }
  if (o.port) {
    const targetPort =
      o.targetPort === undefined || o.targetPort === '' ? undefined : /^\d+$/.test(o.targetPort) ? Number(o.targetPort) : o.targetPort;
    ports = [{ ...(o.portName && { name: o.portName }), protocol, port: o.port, ...(targetPort !== undefined && { targetPort }) }];
  }
  if (!ports.length) throw new UsageError("couldn't find port via --port flag or introspection");
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: o.serviceName,
      namespace: metadata.namespace,
      ownerReferences: [
        {
          apiVersion: target.object.apiVersion ?? 'kubevirt.io/v1',
          kind,
          name: metadata.name!,
          uid: metadata.uid!,
          controller: true,
          blockOwnerDeletion: false,
        },
      ],
    },
    spec: {
      type,
      selector,
      ports,
      ...(o.clusterIp && { clusterIP: o.clusterIp }),
      ...(o.externalIp && { externalIPs: [o.externalIp] }),
    },
  };
}

/** What to do next, appended to the errors virtctl users hit most. */
export function withHint(message: string, name: string, namespace: string): string {
  const hints: [RegExp, string][] = [
    [
      /VMI is not running|VM is not running|virtualmachineinstance.kubevirt.io ".*" not found|VMI is not started/,
      `start it with virtctl start ${name}${namespaceFlag(namespace)}`,
    ],
    [/VMI is already paused/, `resume it with virtctl unpause vmi ${name}${namespaceFlag(namespace)}`],
    [/guest agent connected/, 'the guest must run qemu-guest-agent on its virtio channel org.qemu.guest_agent.0'],
    [/forbidden/, `ask an administrator for the kubevirt.io:edit role in namespace ${namespace}`],
    [/virtualmachine.kubevirt.io ".*" not found/, `list the VMs with kubectl get vm${namespaceFlag(namespace)}`],
  ];
  const hint = hints.find(([pattern]) => pattern.test(message))?.[1];
  return hint ? `${message}: ${hint}` : message;
}

const namespaceFlag = (namespace: string) => (namespace === 'default' ? '' : ` -n ${namespace}`);

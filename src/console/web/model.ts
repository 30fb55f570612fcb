// The console page's pure parts: API paths, the VM list's rows, the VM a
// create form describes, and how an API refusal reads. No DOM here, so unit
// tests run it under Node.
import { BEARER_PROTOCOL_PREFIX, REFUSAL_CLOSE_BASE, statusMessageOf } from '../../contract/streams.ts';

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  creationTimestamp?: string;
  uid?: string;
}
export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}
export interface Vm {
  metadata: ObjectMeta;
  spec?: { runStrategy?: string; running?: boolean; instancetype?: { name?: string }; preference?: { name?: string } };
  status?: { printableStatus?: string; ready?: boolean; conditions?: Condition[] };
}
export interface Vmi {
  metadata: ObjectMeta;
  status?: {
    phase?: string;
    nodeName?: string;
    interfaces?: { name?: string; ipAddress?: string; ipAddresses?: string[] }[];
    conditions?: Condition[];
    guestOSInfo?: { prettyName?: string; name?: string };
  };
}

export const SUBRESOURCES = '/apis/subresources.kubevirt.io/v1';
const enc = encodeURIComponent;
export const vmsPath = (ns: string) => `/apis/kubevirt.io/v1/namespaces/${enc(ns)}/virtualmachines`;
export const vmisPath = (ns: string) => `/apis/kubevirt.io/v1/namespaces/${enc(ns)}/virtualmachineinstances`;
export const vmActionPath = (ns: string, name: string, action: VmAction) =>
  `${SUBRESOURCES}/namespaces/${enc(ns)}/virtualmachines/${enc(name)}/${action}`;
export const vmiSubresourcePath = (ns: string, name: string, what: VmiAction | 'console' | 'vnc') =>
  `${SUBRESOURCES}/namespaces/${enc(ns)}/virtualmachineinstances/${enc(name)}/${what}`;
export const eventsPath = (ns: string, name: string) =>
  `/api/v1/namespaces/${enc(ns)}/events?fieldSelector=${enc(`involvedObject.name=${name}`)}`;

export type VmAction = 'start' | 'stop' | 'restart';
export type VmiAction = 'pause' | 'unpause';

export interface VmRow {
  name: string;
  status: string;
  ip: string;
  node: string;
  /** Whether the VM has a VMI (it is started): console, VNC, pause and stop apply. */
  started: boolean;
  paused: boolean;
}

const isTrue = (conditions: Condition[] | undefined, type: string) =>
  conditions?.some((c) => c.type === type && c.status === 'True') ?? false;

/** The VM list's rows, by name: each VM with its VMI's node and first address. */
export function vmRows(vms: Vm[], vmis: Vmi[]): VmRow[] {
  const vmiByName = new Map(vmis.map((vmi) => [vmi.metadata.name, vmi]));
  return vms
    .map((vm) => {
      const vmi = vmiByName.get(vm.metadata.name);
      return {
        name: vm.metadata.name ?? '',
        status: vm.status?.printableStatus ?? 'Unknown',
        ip: vmi?.status?.interfaces?.find((i) => i.ipAddress)?.ipAddress ?? '',
        node: vmi?.status?.nodeName ?? '',
        started: vmi !== undefined,
        paused: isTrue(vmi?.status?.conditions, 'Paused'),
      };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface CreateForm {
  name: string;
  namespace: string;
  /** The root disk: a containerDisk image, or a DataVolume the VM owns, imported over HTTP(S). */
  diskSource: 'containerDisk' | 'dataVolume';
  image: string;
  url: string;
  /** The DataVolume's size, a quantity. */
  size: string;
  instancetype: string;
  /** A cluster preference, or '' for none. */
  preference: string;
  userData: string;
  start: boolean;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** What is wrong with a create form, each as `field: message`. */
export function checkCreateForm(form: CreateForm): string[] {
  const errors: string[] = [];
  if (!DNS_LABEL.test(form.name) || form.name.length > 63)
    errors.push('metadata.name: must be a DNS label (lower-case letters, digits and "-", at most 63)');
  if (form.diskSource === 'containerDisk' && !form.image.trim())
    errors.push('spec.template.spec.volumes[0].containerDisk.image: must name a containerDisk image');
  if (form.diskSource === 'dataVolume') {
    if (!/^https?:\/\/[^\s/]+\/\S*$/.test(form.url.trim()))
      errors.push('spec.dataVolumeTemplates[0].spec.source.http.url: must be an http:// or https:// URL of a disk image');
    if (!/^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$/.test(form.size.trim()))
      errors.push('spec.dataVolumeTemplates[0].spec.storage.resources.requests.storage: must be a quantity such as 2Gi');
  }
  if (!form.instancetype) errors.push('spec.instancetype.name: choose an instance type');
  return errors;
}

/**
 * The VirtualMachine a create form describes: a containerDisk root disk or a DataVolume template the VM owns,
 * cloud-init user data when given, sized by the instance type.
 */
export function vmManifest(form: CreateForm): Record<string, unknown> {
  const disks: Record<string, unknown>[] = [{ name: 'rootdisk', disk: { bus: 'virtio' } }];
  const dataVolume = `${form.name}-rootdisk`;
  const volumes: Record<string, unknown>[] = [
    form.diskSource === 'dataVolume'
      ? { name: 'rootdisk', dataVolume: { name: dataVolume } }
      : { name: 'rootdisk', containerDisk: { image: form.image.trim() } },
  ];
  const dataVolumeTemplates =
    form.diskSource === 'dataVolume'
      ? [
          {
            metadata: { name: dataVolume },
            spec: { source: { http: { url: form.url.trim() } }, storage: { resources: { requests: { storage: form.size.trim() } } } },
          },
        ]
      : undefined;
  if (form.userData.trim()) {
    disks.push({ name: 'cloudinitdisk', disk: { bus: 'virtio' } });
    volumes.push({ name: 'cloudinitdisk', cloudInitNoCloud: { userData: form.userData } });
  }
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: form.name, namespace: form.namespace },
    spec: {
      runStrategy: form.start ? 'Always' : 'Halted',
      instancetype: { kind: 'VirtualMachineClusterInstancetype', name: form.instancetype },
      ...(form.preference ? { preference: { kind: 'VirtualMachineClusterPreference', name: form.preference } } : {}),
      ...(dataVolumeTemplates ? { dataVolumeTemplates } : {}),
      template: {
        metadata: { labels: { 'kubevirt.io/vm': form.name } },
        spec: { domain: { devices: { disks } }, volumes },
      },
    },
  };
}

/** How an API error reads in the page: the HTTP status and the API's own message. */
export function describeError(code: number, body: string): string {
  const message = statusMessageOf(body);
  return `${code}${code === 403 ? ' Forbidden' : code === 401 ? ' Unauthorized' : ''}: ${message || 'no message'}`;
}

/** A stream the server closed with REFUSAL_CLOSE_BASE + an HTTP status: the refusal it carries, else undefined. */
export function streamRefusal(closeCode: number, reason: string): string | undefined {
  const code = closeCode - REFUSAL_CLOSE_BASE;
  return code >= 100 && code <= 999 ? describeError(code, reason) : undefined;
}

/** The bearer token as kube-apiserver takes it in a WebSocket subprotocol. */
export function bearerProtocol(token: string): string {
  const bytes = new TextEncoder().encode(token);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `${BEARER_PROTOCOL_PREFIX}${btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}`;
}

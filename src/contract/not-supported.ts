// The kinds kubevirt-ts serves but does not carry out yet (snapshots, restores,
// exports, clones, backups): which resources they are, for virt-controller,
// which says so in their status, and for virt-operator, which grants it that.
import { BACKUP_GROUP, CLONE_GROUP, EXPORT_GROUP, SNAPSHOT_GROUP } from '../api/crds.ts';

export const NOT_SUPPORTED_REASON = 'NotSupported';

export interface NotSupportedKind {
  kind: string;
  group: string;
  /** The version the controller reads and writes (the storage version). */
  version: string;
  plural: string;
  /** How people call objects of the kind, in the message. */
  what: string;
}

export const NOT_SUPPORTED_KINDS: readonly NotSupportedKind[] = [
  { kind: 'VirtualMachineSnapshot', group: SNAPSHOT_GROUP, version: 'v1beta1', plural: 'virtualmachinesnapshots', what: 'VM snapshots' },
  {
    kind: 'VirtualMachineSnapshotContent',
    group: SNAPSHOT_GROUP,
    version: 'v1beta1',
    plural: 'virtualmachinesnapshotcontents',
    what: 'VM snapshots',
  },
  { kind: 'VirtualMachineRestore', group: SNAPSHOT_GROUP, version: 'v1beta1', plural: 'virtualmachinerestores', what: 'VM restores' },
  { kind: 'VirtualMachineExport', group: EXPORT_GROUP, version: 'v1', plural: 'virtualmachineexports', what: 'VM exports' },
  { kind: 'VirtualMachineClone', group: CLONE_GROUP, version: 'v1beta1', plural: 'virtualmachineclones', what: 'VM clones' },
  { kind: 'VirtualMachineBackup', group: BACKUP_GROUP, version: 'v1alpha1', plural: 'virtualmachinebackups', what: 'VM backups' },
];

export const notSupportedMessage = (kind: NotSupportedKind) => `kubevirt-ts does not support ${kind.what} yet`;

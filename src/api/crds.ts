// Every CRD kubevirt-ts installs: names, versions, subresources and printer
// columns as upstream's, with schemas generated from ./schema.
import type { TSchema } from '@sinclair/typebox';
import { toCrdSchema, type JSONSchemaProps } from './openapi.ts';
import * as V from './schema/vmi.ts';
import * as K from './schema/kinds.ts';
import * as C from './schema/cdi.ts';
import * as S from './schema/side-kinds.ts';

export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface CrdDefinition {
  group: string;
  kind: string;
  plural: string;
  singular: string;
  shortNames?: string[];
  categories?: string[];
  scope: 'Namespaced' | 'Cluster';
  /** Served versions, storage version first; the others are deprecated aliases with the same schema, unless `deprecations` says otherwise. */
  versions: string[];
  /** Which versions are deprecated, with their warnings, where that is not "every version but the storage one". */
  deprecations?: Record<string, string>;
  spec: () => TSchema;
  status?: () => TSchema;
  specRequired: boolean;
  subresources?: { status?: boolean; scale?: boolean };
  columns?: PrinterColumn[];
}

const AGE: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };
const PHASE: PrinterColumn = { name: 'Phase', type: 'string', jsonPath: '.status.phase' };
const readyCondition = (name: string, type: string, priority?: number): PrinterColumn => ({
  name,
  type: 'string',
  jsonPath: `.status.conditions[?(@.type=='${type}')].status`,
  ...(priority ? { priority } : {}),
});
const replicaColumns = (what: string): PrinterColumn[] => [
  { name: 'Desired', type: 'integer', jsonPath: '.spec.replicas', description: `Number of desired ${what}` },
  {
    name: 'Current',
    type: 'integer',
    jsonPath: '.status.replicas',
    description: `Number of managed and not final or deleted ${what}`,
  },
  {
    name: 'Ready',
    type: 'integer',
    jsonPath: '.status.readyReplicas',
    description: `Number of managed ${what} which are ready to receive traffic`,
  },
  AGE,
];

export const CORE_GROUP = 'kubevirt.io';
const CORE_VERSIONS = ['v1', 'v1alpha3'];
export const SNAPSHOT_GROUP = 'snapshot.kubevirt.io';
export const EXPORT_GROUP = 'export.kubevirt.io';
export const CLONE_GROUP = 'clone.kubevirt.io';
export const BACKUP_GROUP = 'backup.kubevirt.io';

export const CRDS: CrdDefinition[] = [
  {
    group: CORE_GROUP,
    kind: 'VirtualMachineInstance',
    plural: 'virtualmachineinstances',
    singular: 'virtualmachineinstance',
    shortNames: ['vmi', 'vmis'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: CORE_VERSIONS,
    spec: V.VirtualMachineInstanceSpec,
    status: V.VirtualMachineInstanceStatus,
    specRequired: true,
    columns: [
      AGE,
      PHASE,
      { name: 'IP', type: 'string', jsonPath: '.status.interfaces[0].ipAddress' },
      { name: 'NodeName', type: 'string', jsonPath: '.status.nodeName' },
      readyCondition('Ready', 'Ready'),
      readyCondition('Live-Migratable', 'LiveMigratable', 1),
      readyCondition('Paused', 'Paused', 1),
    ],
  },
  {
    group: CORE_GROUP,
    kind: 'VirtualMachine',
    plural: 'virtualmachines',
    singular: 'virtualmachine',
    shortNames: ['vm', 'vms'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: CORE_VERSIONS,
    spec: K.VirtualMachineSpec,
    status: K.VirtualMachineStatus,
    specRequired: true,
    subresources: { status: true },
    columns: [
      AGE,
      { name: 'Status', type: 'string', jsonPath: '.status.printableStatus', description: 'Human Readable Status' },
      readyCondition('Ready', 'Ready'),
    ],
  },
  {
    group: CORE_GROUP,
    kind: 'VirtualMachineInstanceReplicaSet',
    plural: 'virtualmachineinstancereplicasets',
    singular: 'virtualmachineinstancereplicaset',
    shortNames: ['vmirs', 'vmirss'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: CORE_VERSIONS,
    spec: K.VirtualMachineInstanceReplicaSetSpec,
    status: K.VirtualMachineInstanceReplicaSetStatus,
    specRequired: true,
    subresources: { status: true, scale: true },
    columns: replicaColumns('VirtualMachineInstances'),
  },
  {
    group: CORE_GROUP,
    kind: 'VirtualMachineInstanceMigration',
    plural: 'virtualmachineinstancemigrations',
    singular: 'virtualmachineinstancemigration',
    shortNames: ['vmim', 'vmims'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: CORE_VERSIONS,
    spec: K.VirtualMachineInstanceMigrationSpec,
    status: K.VirtualMachineInstanceMigrationStatus,
    specRequired: true,
    subresources: { status: true },
    columns: [
      { ...PHASE, description: 'The current phase of VM instance migration' },
      { name: 'VMI', type: 'string', jsonPath: '.spec.vmiName', description: 'The name of the VMI to perform the migration on' },
    ],
  },
  {
    group: CORE_GROUP,
    kind: 'KubeVirt',
    plural: 'kubevirts',
    singular: 'kubevirt',
    shortNames: ['kv', 'kvs'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: CORE_VERSIONS,
    spec: K.KubeVirtSpec,
    status: K.KubeVirtStatus,
    specRequired: true,
    subresources: { status: true },
    columns: [AGE, PHASE],
  },
  {
    group: 'pool.kubevirt.io',
    kind: 'VirtualMachinePool',
    plural: 'virtualmachinepools',
    singular: 'virtualmachinepool',
    shortNames: ['vmpool', 'vmpools'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: ['v1beta1', 'v1alpha1'],
    spec: K.VirtualMachinePoolSpec,
    status: K.VirtualMachinePoolStatus,
    specRequired: true,
    subresources: { status: true, scale: true },
    columns: replicaColumns('VirtualMachines'),
  },
  {
    group: 'instancetype.kubevirt.io',
    kind: 'VirtualMachineInstancetype',
    plural: 'virtualmachineinstancetypes',
    singular: 'virtualmachineinstancetype',
    shortNames: ['vminstancetype', 'vminstancetypes', 'vmf', 'vmfs'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: ['v1beta1'],
    spec: K.VirtualMachineInstancetypeSpec,
    specRequired: true,
  },
  {
    group: 'instancetype.kubevirt.io',
    kind: 'VirtualMachineClusterInstancetype',
    plural: 'virtualmachineclusterinstancetypes',
    singular: 'virtualmachineclusterinstancetype',
    shortNames: ['vmclusterinstancetype', 'vmclusterinstancetypes', 'vmcf', 'vmcfs'],
    scope: 'Cluster',
    versions: ['v1beta1'],
    spec: K.VirtualMachineInstancetypeSpec,
    specRequired: true,
  },
  {
    group: 'instancetype.kubevirt.io',
    kind: 'VirtualMachinePreference',
    plural: 'virtualmachinepreferences',
    singular: 'virtualmachinepreference',
    shortNames: ['vmpref', 'vmprefs', 'vmp', 'vmps'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: ['v1beta1'],
    spec: K.VirtualMachinePreferenceSpec,
    specRequired: true,
  },
  {
    group: 'instancetype.kubevirt.io',
    kind: 'VirtualMachineClusterPreference',
    plural: 'virtualmachineclusterpreferences',
    singular: 'virtualmachineclusterpreference',
    shortNames: ['vmcp', 'vmcps'],
    scope: 'Cluster',
    versions: ['v1beta1'],
    spec: K.VirtualMachinePreferenceSpec,
    specRequired: true,
  },
  {
    group: 'migrations.kubevirt.io',
    kind: 'MigrationPolicy',
    plural: 'migrationpolicies',
    singular: 'migrationpolicy',
    scope: 'Cluster',
    versions: ['v1alpha1'],
    spec: K.MigrationPolicySpec,
    status: () => ({ type: 'object', properties: {} }) as unknown as TSchema,
    specRequired: true,
    subresources: { status: true },
  },
  {
    group: CORE_GROUP,
    kind: 'VirtualMachineInstancePreset',
    plural: 'virtualmachineinstancepresets',
    singular: 'virtualmachineinstancepreset',
    shortNames: ['vmipreset', 'vmipresets'],
    categories: ['all'],
    scope: 'Namespaced',
    // Upstream still stores presets as v1alpha3, and warns on both versions.
    versions: ['v1alpha3', 'v1'],
    deprecations: {
      v1: 'kubevirt.io/v1 VirtualMachineInstancePresets is now deprecated and will be removed in v2.',
      v1alpha3: 'kubevirt.io/v1alpha3 VirtualMachineInstancePresets is now deprecated and will be removed in v2.',
    },
    spec: S.VirtualMachineInstancePresetSpec,
    specRequired: false,
  },
  {
    group: SNAPSHOT_GROUP,
    kind: 'VirtualMachineSnapshot',
    plural: 'virtualmachinesnapshots',
    singular: 'virtualmachinesnapshot',
    shortNames: ['vmsnapshot', 'vmsnapshots'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: ['v1beta1', 'v1alpha1'],
    deprecations: {},
    spec: S.VirtualMachineSnapshotSpec,
    status: S.VirtualMachineSnapshotStatus,
    specRequired: true,
    subresources: { status: true },
    columns: [
      { name: 'SourceKind', type: 'string', jsonPath: '.spec.source.kind' },
      { name: 'SourceName', type: 'string', jsonPath: '.spec.source.name' },
      PHASE,
      { name: 'ReadyToUse', type: 'boolean', jsonPath: '.status.readyToUse' },
      { name: 'CreationTime', type: 'date', jsonPath: '.status.creationTime' },
      { name: 'Error', type: 'string', jsonPath: '.status.error.message' },
    ],
  },
  {
    group: SNAPSHOT_GROUP,
    kind: 'VirtualMachineSnapshotContent',
    plural: 'virtualmachinesnapshotcontents',
    singular: 'virtualmachinesnapshotcontent',
    shortNames: ['vmsnapshotcontent', 'vmsnapshotcontents'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: ['v1beta1', 'v1alpha1'],
    deprecations: {},
    spec: S.VirtualMachineSnapshotContentSpec,
    status: S.VirtualMachineSnapshotContentStatus,
    specRequired: true,
    subresources: { status: true },
    columns: [
      { name: 'ReadyToUse', type: 'boolean', jsonPath: '.status.readyToUse' },
      { name: 'CreationTime', type: 'date', jsonPath: '.status.creationTime' },
      { name: 'Error', type: 'string', jsonPath: '.status.error.message' },
    ],
  },
  {
    group: SNAPSHOT_GROUP,
    kind: 'VirtualMachineRestore',
    plural: 'virtualmachinerestores',
    singular: 'virtualmachinerestore',
    shortNames: ['vmrestore', 'vmrestores'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: ['v1beta1', 'v1alpha1'],
    deprecations: {},
    spec: S.VirtualMachineRestoreSpec,
    status: S.VirtualMachineRestoreStatus,
    specRequired: true,
    subresources: { status: true },
    columns: [
      { name: 'TargetKind', type: 'string', jsonPath: '.spec.target.kind' },
      { name: 'TargetName', type: 'string', jsonPath: '.spec.target.name' },
      { name: 'Complete', type: 'boolean', jsonPath: '.status.complete' },
      { name: 'RestoreTime', type: 'date', jsonPath: '.status.restoreTime' },
    ],
  },
  {
    group: EXPORT_GROUP,
    kind: 'VirtualMachineExport',
    plural: 'virtualmachineexports',
    singular: 'virtualmachineexport',
    shortNames: ['vmexport', 'vmexports'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: ['v1', 'v1beta1'],
    deprecations: {
      v1beta1: 'export.kubevirt.io/v1beta1 VirtualMachineExport is now deprecated and will be removed in a future version.',
    },
    spec: S.VirtualMachineExportSpec,
    status: S.VirtualMachineExportStatus,
    specRequired: true,
    subresources: { status: true },
    columns: [
      { name: 'SourceKind', type: 'string', jsonPath: '.spec.source.kind' },
      { name: 'SourceName', type: 'string', jsonPath: '.spec.source.name' },
      PHASE,
    ],
  },
  {
    group: CLONE_GROUP,
    kind: 'VirtualMachineClone',
    plural: 'virtualmachineclones',
    singular: 'virtualmachineclone',
    shortNames: ['vmclone', 'vmclones'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: ['v1beta1', 'v1alpha1'],
    deprecations: {},
    spec: S.VirtualMachineCloneSpec,
    status: S.VirtualMachineCloneStatus,
    specRequired: true,
    subresources: { status: true },
    columns: [
      PHASE,
      { name: 'SourceVirtualMachine', type: 'string', jsonPath: '.spec.source.name' },
      { name: 'TargetVirtualMachine', type: 'string', jsonPath: '.spec.target.name' },
    ],
  },
  {
    group: BACKUP_GROUP,
    kind: 'VirtualMachineBackup',
    plural: 'virtualmachinebackups',
    singular: 'virtualmachinebackup',
    shortNames: ['vmbackup', 'vmbackups'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: ['v1alpha1'],
    spec: S.VirtualMachineBackupSpec,
    status: S.VirtualMachineBackupStatus,
    specRequired: true,
    subresources: { status: true },
    columns: [
      { name: 'SourceKind', type: 'string', jsonPath: '.spec.source.kind' },
      { name: 'SourceName', type: 'string', jsonPath: '.spec.source.name' },
      { name: 'Type', type: 'string', jsonPath: '.status.type' },
      { name: 'CheckpointName', type: 'string', jsonPath: '.status.checkpointName' },
    ],
  },
  {
    group: BACKUP_GROUP,
    kind: 'VirtualMachineBackupTracker',
    plural: 'virtualmachinebackuptrackers',
    singular: 'virtualmachinebackuptracker',
    shortNames: ['vmbackuptracker', 'vmbackuptrackers'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: ['v1alpha1'],
    spec: S.VirtualMachineBackupTrackerSpec,
    status: S.VirtualMachineBackupTrackerStatus,
    specRequired: true,
    subresources: { status: true },
    columns: [
      { name: 'SourceKind', type: 'string', jsonPath: '.spec.source.kind' },
      { name: 'SourceName', type: 'string', jsonPath: '.spec.source.name' },
      { name: 'LatestCheckpoint', type: 'string', jsonPath: '.status.latestCheckpoint.name' },
      { name: 'CheckpointTime', type: 'date', jsonPath: '.status.latestCheckpoint.creationTime' },
    ],
  },
];

export const CDI_GROUP = 'cdi.kubevirt.io';

/** CDI's kinds, served by kubevirt-ts only where CDI itself is not installed. */
export const CDI_CRDS: CrdDefinition[] = [
  {
    group: CDI_GROUP,
    kind: 'DataVolume',
    plural: 'datavolumes',
    singular: 'datavolume',
    shortNames: ['dv', 'dvs'],
    categories: ['all'],
    scope: 'Namespaced',
    versions: ['v1beta1'],
    spec: C.DataVolumeSpec,
    status: C.DataVolumeStatus,
    specRequired: true,
    subresources: { status: true },
    columns: [
      { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'The phase the data volume is in' },
      {
        name: 'Progress',
        type: 'string',
        jsonPath: '.status.progress',
        description: 'Transfer progress in percentage if known, N/A otherwise',
      },
      {
        name: 'Restarts',
        type: 'integer',
        jsonPath: '.status.restartCount',
        description: 'The number of times the transfer has been restarted.',
      },
      AGE,
    ],
  },
  {
    group: CDI_GROUP,
    kind: 'CDIConfig',
    plural: 'cdiconfigs',
    singular: 'cdiconfig',
    scope: 'Cluster',
    versions: ['v1beta1'],
    spec: C.CDIConfigSpec,
    status: C.CDIConfigStatus,
    specRequired: true,
  },
];

export function crdName(def: CrdDefinition): string {
  return `${def.plural}.${def.group}`;
}

export function objectSchema(def: CrdDefinition): JSONSchemaProps {
  const properties: Record<string, JSONSchemaProps> = {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: { type: 'object' },
    spec: toCrdSchema(def.spec()),
  };
  if (def.status) properties.status = { ...toCrdSchema(def.status()), nullable: true };
  return { type: 'object', properties, ...(def.specRequired ? { required: ['spec'] } : {}) };
}

function deprecation(def: CrdDefinition, version: string, index: number) {
  if (def.deprecations) {
    const warning = def.deprecations[version];
    return warning ? { deprecated: true, deprecationWarning: warning } : {};
  }
  if (index === 0) return {};
  return { deprecated: true, deprecationWarning: `${def.group}/${version} ${def.kind} is deprecated; use ${def.group}/${def.versions[0]}` };
}

/** The CustomResourceDefinition object for one kind, ready to apply. */
export function renderCrd(def: CrdDefinition) {
  const schema = objectSchema(def);
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: crdName(def), labels: { 'kubevirt.io': '' } },
    spec: {
      group: def.group,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        ...(def.shortNames ? { shortNames: def.shortNames } : {}),
        ...(def.categories ? { categories: def.categories } : {}),
      },
      scope: def.scope,
      versions: def.versions.map((name, i) => ({
        name,
        served: true,
        storage: i === 0,
        ...deprecation(def, name, i),
        schema: { openAPIV3Schema: schema },
        ...(def.columns ? { additionalPrinterColumns: def.columns } : {}),
        ...(def.subresources
          ? {
              subresources: {
                ...(def.subresources.status ? { status: {} } : {}),
                ...(def.subresources.scale
                  ? {
                      scale: {
                        specReplicasPath: '.spec.replicas',
                        statusReplicasPath: '.status.replicas',
                        labelSelectorPath: '.status.labelSelector',
                      },
                    }
                  : {}),
              },
            }
          : {}),
      })),
    },
  };
}

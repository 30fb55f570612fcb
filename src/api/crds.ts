// Every CRD kubevirt-ts installs: names, versions, subresources and printer
// columns as upstream's, with schemas generated from ./schema.
import type { TSchema } from '@sinclair/typebox';
import { toCrdSchema, type JSONSchemaProps } from './openapi.ts';
import * as V from './schema/vmi.ts';
import * as K from './schema/kinds.ts';
import * as C from './schema/cdi.ts';

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
  /** Served versions, storage version first; the others are deprecated aliases with the same schema. */
  versions: string[];
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
        ...(i > 0
          ? { deprecated: true, deprecationWarning: `${def.group}/${name} ${def.kind} is deprecated; use ${def.group}/${def.versions[0]}` }
          : {}),
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

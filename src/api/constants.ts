// Well-known names shared by every component (labels, annotations, finalizers), as upstream spells them.
export const CREATED_BY_LABEL = 'kubevirt.io/created-by';
export const NODE_NAME_LABEL = 'kubevirt.io/nodeName';
export const NODE_SCHEDULABLE_LABEL = 'kubevirt.io/schedulable';
export const MIGRATION_JOB_LABEL = 'kubevirt.io/migrationJobUID';
export const MIGRATION_TARGET_NODE_LABEL = 'kubevirt.io/migrationTargetNodeName';
export const INSTALL_STRATEGY_LABEL = 'kubevirt.io/install-strategy';
export const VMI_NAME_LABEL = 'kubevirt.io/vmi-name';

/** The instance type a VMI was made with, as its VM names it (a cluster one, or one of the namespace). */
export const INSTANCETYPE_ANNOTATION = 'kubevirt.io/instancetype-name';
export const CLUSTER_INSTANCETYPE_ANNOTATION = 'kubevirt.io/cluster-instancetype-name';

export const VMI_FINALIZER = 'kubevirt.io/foregroundDeleteVirtualMachine';
export const MIGRATION_FINALIZER = 'kubevirt.io/migrationJobFinalize';

export const PCI_TOPOLOGY_VERSION_ANNOTATION = 'kubevirt.io/pci-topology-version';
export const PCI_TOPOLOGY_VERSION = 'v3';

export const NON_ROOT_UID = 107;
export const DEFAULT_GRACE_PERIOD_SECONDS = 30;

/** Labels only kubevirt-ts itself may put on a VMI. */
export const RESTRICTED_VMI_LABELS = [
  CREATED_BY_LABEL,
  MIGRATION_JOB_LABEL,
  NODE_NAME_LABEL,
  MIGRATION_TARGET_NODE_LABEL,
  NODE_SCHEDULABLE_LABEL,
  INSTALL_STRATEGY_LABEL,
];

/** The launcher pod label Services select a VMI by (virtctl expose). */
export const VMI_ID_LABEL = 'vmi.kubevirt.io/id';

/** kubevirt-ts's own service accounts, whose writes to VMI status and spec are trusted (virt-handler's only on its node). */
export const KUBEVIRT_SERVICE_ACCOUNTS = ['kubevirt-apiserver', 'kubevirt-controller', 'kubevirt-handler', 'kubevirt-operator'] as const;
export const serviceAccountUsername = (namespace: string, name: string) => `system:serviceaccount:${namespace}:${name}`;

// The user-facing ClusterRoles, as upstream names them: kubevirt.io:view, :edit
// and :admin aggregate into Kubernetes' view, edit and admin roles, and
// kubevirt.io:default lets every authenticated user see the install and its version.

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };

const SUBRESOURCES = 'subresources.kubevirt.io';
const ALL = ['get', 'delete', 'create', 'update', 'patch', 'list', 'watch', 'deletecollection'];
const READ = ['get', 'list', 'watch'];

const CORE_RESOURCES = [
  'virtualmachines',
  'virtualmachineinstances',
  'virtualmachineinstancepresets',
  'virtualmachineinstancereplicasets',
  'virtualmachineinstancemigrations',
];
const SIDE_GROUPS: Record<string, string[]> = {
  'pool.kubevirt.io': ['virtualmachinepools'],
  'instancetype.kubevirt.io': [
    'virtualmachineinstancetypes',
    'virtualmachineclusterinstancetypes',
    'virtualmachinepreferences',
    'virtualmachineclusterpreferences',
  ],
};
/**
 * Snapshots, restores, exports, clones and backups: admins may do everything,
 * editors all but deletecollection, viewers read (upstream's split).
 */
const DATA_GROUPS: Record<string, string[]> = {
  'snapshot.kubevirt.io': ['virtualmachinesnapshots', 'virtualmachinesnapshotcontents', 'virtualmachinerestores'],
  'backup.kubevirt.io': ['virtualmachinebackups', 'virtualmachinebackuptrackers'],
  'export.kubevirt.io': ['virtualmachineexports'],
  'clone.kubevirt.io': ['virtualmachineclones'],
};
const dataRules = (verbs: string[]): Rule[] =>
  Object.entries(DATA_GROUPS).map(([group, resources]) => ({ apiGroups: [group], resources, verbs }));
/** Guest information any viewer may read. */
const READ_GUEST_INFO = [
  'virtualmachineinstances/guestosinfo',
  'virtualmachineinstances/filesystemlist',
  'virtualmachineinstances/userlist',
];
/** Streams into the guest: console, screen, ports. Not for viewers. */
const GUEST_ACCESS = [
  'virtualmachineinstances/console',
  'virtualmachineinstances/vnc',
  'virtualmachineinstances/vnc/screenshot',
  'virtualmachineinstances/portforward',
  'virtualmachineinstances/usbredir',
  'virtualmachineinstances/vsock',
  'virtualmachines/portforward',
];
/** Lifecycle actions. */
const ACTIONS = [
  'virtualmachineinstances/pause',
  'virtualmachineinstances/unpause',
  'virtualmachineinstances/softreboot',
  'virtualmachineinstances/reset',
  'virtualmachineinstances/addvolume',
  'virtualmachineinstances/removevolume',
  'virtualmachineinstances/freeze',
  'virtualmachineinstances/unfreeze',
  'virtualmachineinstances/evacuate/cancel',
  'virtualmachines/start',
  'virtualmachines/stop',
  'virtualmachines/restart',
  'virtualmachines/migrate',
  'virtualmachines/addvolume',
  'virtualmachines/removevolume',
  'virtualmachines/memorydump',
  'virtualmachines/removememorydump',
  'virtualmachines/evacuate/cancel',
];

function writerRules(admin: boolean): Rule[] {
  return [
    ...dataRules(admin ? ALL : ALL.filter((v) => v !== 'deletecollection')),
    { apiGroups: [SUBRESOURCES], resources: [...READ_GUEST_INFO, ...GUEST_ACCESS, 'virtualmachines/expand-spec'], verbs: ['get'] },
    { apiGroups: [SUBRESOURCES], resources: [...ACTIONS, 'expand-vm-spec'], verbs: ['update'] },
    { apiGroups: ['kubevirt.io'], resources: CORE_RESOURCES, verbs: ALL },
    { apiGroups: ['kubevirt.io'], resources: ['kubevirts'], verbs: READ },
    ...Object.entries(SIDE_GROUPS).map(([group, resources]) => ({ apiGroups: [group], resources, verbs: ALL })),
    { apiGroups: ['migrations.kubevirt.io'], resources: ['migrationpolicies'], verbs: READ },
  ];
}

const role = (name: string, aggregateTo: string | undefined, rules: Rule[]) => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRole',
  metadata: {
    name,
    labels: { 'kubevirt.io': '', ...(aggregateTo ? { [`rbac.authorization.k8s.io/aggregate-to-${aggregateTo}`]: 'true' } : {}) },
  },
  rules,
});

export function userClusterRoles(): Record<string, unknown>[] {
  return [
    role('kubevirt.io:default', undefined, [
      { apiGroups: ['kubevirt.io'], resources: ['kubevirts'], verbs: ['get', 'list'] },
      { apiGroups: [SUBRESOURCES], resources: ['version', 'guestfs'], verbs: ['get', 'list'] },
    ]),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'kubevirt.io:default', labels: { 'kubevirt.io': '' } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kubevirt.io:default' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:authenticated' }],
    },
    role('kubevirt.io:admin', 'admin', writerRules(true)),
    role('kubevirt.io:edit', 'edit', writerRules(false)),
    role('kubevirt.io:view', 'view', [
      { apiGroups: ['kubevirt.io'], resources: ['kubevirts'], verbs: ['get', 'list'] },
      { apiGroups: [SUBRESOURCES], resources: [...READ_GUEST_INFO, 'virtualmachines/expand-spec'], verbs: ['get'] },
      { apiGroups: [SUBRESOURCES], resources: ['expand-vm-spec'], verbs: ['update'] },
      { apiGroups: ['kubevirt.io'], resources: CORE_RESOURCES, verbs: READ },
      ...Object.entries(SIDE_GROUPS).map(([group, resources]) => ({ apiGroups: [group], resources, verbs: READ })),
      ...dataRules(READ),
      { apiGroups: ['migrations.kubevirt.io'], resources: ['migrationpolicies'], verbs: READ },
    ]),
    // Every authenticated user may see the cluster-wide instance types and preferences (the catalogue), as upstream.
    role('instancetype.kubevirt.io:view', undefined, [
      {
        apiGroups: ['instancetype.kubevirt.io'],
        resources: ['virtualmachineclusterinstancetypes', 'virtualmachineclusterpreferences'],
        verbs: READ,
      },
    ]),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: {
        name: 'instancetype.kubevirt.io:view',
        labels: { 'kubevirt.io': '' },
        annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'true' },
      },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'instancetype.kubevirt.io:view' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:authenticated' }],
    },
    role('kubevirt.io:migrate', undefined, [
      { apiGroups: [SUBRESOURCES], resources: ['virtualmachines/migrate'], verbs: ['update'] },
      { apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstancemigrations'], verbs: ALL },
    ]),
  ];
}

// Schemas of the core Kubernetes types that kubevirt.io objects embed.
import {
  Type,
  Obj,
  Opt,
  Str,
  Bool,
  Int32,
  Int64,
  Arr,
  StrList,
  StringMap,
  QuantityMap,
  IntOrString,
  Time,
  Quantity,
  Empty,
  Unstructured,
} from './builders.ts';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string | null;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  managedFields?: unknown[];
}

/** Embedded metadata (templates) is kept whole by the CRD, as upstream's CRDs do. */
export const EmbeddedObjectMeta = () =>
  Type.Unsafe<ObjectMeta>({ type: 'object', nullable: true, 'x-kubernetes-preserve-unknown-fields': true });

export const LocalObjectReference = () => Obj({ name: Opt(Str()) }, { 'x-kubernetes-map-type': 'atomic' });

export const LabelSelectorRequirement = () => Obj({ key: Str(), operator: Str(), values: Opt(Arr(Type.String(), 'atomic')) });

export const LabelSelector = () =>
  Obj(
    { matchExpressions: Opt(Arr(LabelSelectorRequirement(), 'atomic')), matchLabels: Opt(StringMap()) },
    { 'x-kubernetes-map-type': 'atomic' },
  );

const NodeSelectorRequirement = () => Obj({ key: Str(), operator: Str(), values: Opt(Arr(Type.String(), 'atomic')) });
const NodeSelectorTerm = () =>
  Obj(
    {
      matchExpressions: Opt(Arr(NodeSelectorRequirement(), 'atomic')),
      matchFields: Opt(Arr(NodeSelectorRequirement(), 'atomic')),
    },
    { 'x-kubernetes-map-type': 'atomic' },
  );
const PodAffinityTerm = () =>
  Obj({
    labelSelector: Opt(LabelSelector()),
    matchLabelKeys: Opt(Arr(Type.String(), 'atomic')),
    mismatchLabelKeys: Opt(Arr(Type.String(), 'atomic')),
    namespaceSelector: Opt(LabelSelector()),
    namespaces: Opt(Arr(Type.String(), 'atomic')),
    topologyKey: Str(),
  });
const WeightedPodAffinityTerm = () => Obj({ podAffinityTerm: PodAffinityTerm(), weight: Int32() });
const PodAffinity = () =>
  Obj({
    preferredDuringSchedulingIgnoredDuringExecution: Opt(Arr(WeightedPodAffinityTerm(), 'atomic')),
    requiredDuringSchedulingIgnoredDuringExecution: Opt(Arr(PodAffinityTerm(), 'atomic')),
  });

export const Affinity = () =>
  Obj({
    nodeAffinity: Opt(
      Obj({
        preferredDuringSchedulingIgnoredDuringExecution: Opt(Arr(Obj({ preference: NodeSelectorTerm(), weight: Int32() }), 'atomic')),
        requiredDuringSchedulingIgnoredDuringExecution: Opt(
          Obj({ nodeSelectorTerms: Arr(NodeSelectorTerm(), 'atomic') }, { 'x-kubernetes-map-type': 'atomic' }),
        ),
      }),
    ),
    podAffinity: Opt(PodAffinity()),
    podAntiAffinity: Opt(PodAffinity()),
  });

export const Toleration = () =>
  Obj({
    effect: Opt(Str()),
    key: Opt(Str()),
    operator: Opt(Str()),
    tolerationSeconds: Opt(Int64()),
    value: Opt(Str()),
  });

export const TopologySpreadConstraint = () =>
  Obj({
    labelSelector: Opt(LabelSelector()),
    matchLabelKeys: Opt(Arr(Type.String(), 'atomic')),
    maxSkew: Int32(),
    minDomains: Opt(Int32()),
    nodeAffinityPolicy: Opt(Str()),
    nodeTaintsPolicy: Opt(Str()),
    topologyKey: Str(),
    whenUnsatisfiable: Str(),
  });

export const PodDNSConfig = () =>
  Obj({
    nameservers: Opt(Arr(Type.String(), 'atomic')),
    options: Opt(Arr(Obj({ name: Opt(Str()), value: Opt(Str()) }), 'atomic')),
    searches: Opt(Arr(Type.String(), 'atomic')),
  });

export const ExecAction = () => Obj({ command: Opt(Arr(Type.String(), 'atomic')) });
export const HTTPGetAction = () =>
  Obj({
    host: Opt(Str()),
    httpHeaders: Opt(Arr(Obj({ name: Str(), value: Str() }), 'atomic')),
    path: Opt(Str()),
    port: IntOrString(),
    scheme: Opt(Str()),
  });
export const TCPSocketAction = () => Obj({ host: Opt(Str()), port: IntOrString() });

export const ResourceClaimRef = () => Obj({ name: Str(), request: Opt(Str()) });
export const ResourceRequirements = () =>
  Obj({
    claims: Opt(Arr(ResourceClaimRef(), { mapKeys: ['name'] })),
    limits: Opt(QuantityMap()),
    requests: Opt(QuantityMap()),
  });

export const PersistentVolumeClaimVolumeSource = () => Obj({ claimName: Str(), readOnly: Opt(Bool()) });

const ObjectFieldSelector = () => Obj({ apiVersion: Opt(Str()), fieldPath: Str() }, { 'x-kubernetes-map-type': 'atomic' });
const ResourceFieldSelector = () =>
  Obj({ containerName: Opt(Str()), divisor: Opt(Quantity()), resource: Str() }, { 'x-kubernetes-map-type': 'atomic' });
export const DownwardAPIVolumeFile = () =>
  Obj({
    fieldRef: Opt(ObjectFieldSelector()),
    mode: Opt(Int32()),
    path: Str(),
    resourceFieldRef: Opt(ResourceFieldSelector()),
  });

const TypedLocalObjectReference = () => Obj({ apiGroup: Opt(Str()), kind: Str(), name: Str() }, { 'x-kubernetes-map-type': 'atomic' });
const TypedObjectReference = () => Obj({ apiGroup: Opt(Str()), kind: Str(), name: Str(), namespace: Opt(Str()) });

/** The fields CDI's `storage` shares with a PersistentVolumeClaimSpec. */
const claimFields = () => ({
  accessModes: Opt(Arr(Type.String(), 'atomic')),
  dataSource: Opt(TypedLocalObjectReference()),
  dataSourceRef: Opt(TypedObjectReference()),
  resources: Opt(Obj({ limits: Opt(QuantityMap()), requests: Opt(QuantityMap()) })),
  selector: Opt(LabelSelector()),
  storageClassName: Opt(Str()),
  volumeMode: Opt(Str()),
  volumeName: Opt(Str()),
});

export const PersistentVolumeClaimSpec = () => Obj({ ...claimFields(), volumeAttributesClassName: Opt(Str()) });

/** CDI's DataVolumeSpec, which VMs embed in dataVolumeTemplates. */
export const DataVolumeSpec = () =>
  Obj({
    checkpoints: Opt(Arr(Obj({ current: Str(), previous: Str() }), 'atomic')),
    contentType: Opt(Str()),
    finalCheckpoint: Opt(Bool()),
    preallocation: Opt(Bool()),
    priorityClassName: Opt(Str()),
    pvc: Opt(PersistentVolumeClaimSpec()),
    source: Opt(
      Obj({
        blank: Opt(Empty()),
        gcs: Opt(Obj({ secretRef: Opt(Str()), url: Str() })),
        http: Opt(
          Obj({
            certConfigMap: Opt(Str()),
            extraHeaders: Opt(StrList()),
            secretExtraHeaders: Opt(StrList()),
            secretRef: Opt(Str()),
            url: Str(),
          }),
        ),
        imageio: Opt(Obj({ certConfigMap: Opt(Str()), diskId: Str(), insecureSkipVerify: Opt(Bool()), secretRef: Opt(Str()), url: Str() })),
        pvc: Opt(Obj({ name: Str(), namespace: Str() })),
        registry: Opt(
          Obj({
            certConfigMap: Opt(Str()),
            imageStream: Opt(Str()),
            platform: Opt(Obj({ architecture: Opt(Str()) })),
            pullMethod: Opt(Str()),
            secretRef: Opt(Str()),
            url: Opt(Str()),
          }),
        ),
        s3: Opt(Obj({ certConfigMap: Opt(Str()), secretRef: Opt(Str()), url: Str() })),
        snapshot: Opt(Obj({ name: Str(), namespace: Str() })),
        upload: Opt(Empty()),
        vddk: Opt(
          Obj({
            backingFile: Opt(Str()),
            extraArgs: Opt(Str()),
            initImageURL: Opt(Str()),
            secretRef: Opt(Str()),
            thumbprint: Opt(Str()),
            url: Opt(Str()),
            uuid: Opt(Str()),
          }),
        ),
      }),
    ),
    sourceRef: Opt(Obj({ kind: Str(), name: Str(), namespace: Opt(Str()) })),
    storage: Opt(Obj(claimFields())),
  });

/** The shape every status condition of kubevirt.io kinds shares. */
export const Condition = () =>
  Obj({
    lastProbeTime: Opt(Time()),
    lastTransitionTime: Opt(Time()),
    message: Opt(Str()),
    reason: Opt(Str()),
    status: Str(),
    type: Str(),
  });

export { Unstructured };

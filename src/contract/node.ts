// What virt-handler writes on its node and the other components read.
export const HEARTBEAT_ANNOTATION = 'kubevirt.io/heartbeat';
/** Whether guests on the node run in software emulation (no usable KVM, or useEmulation). */
export const EMULATION_ANNOTATION = 'kubevirt.io/software-emulation';
/**
 * The node's CPU, in upstream's node labeller's labels: each model it offers its guests, each
 * feature its CPU has. virt-controller puts a VMI's model and required features in its launcher
 * pod's node selector, and keeps it off nodes with a feature it forbids.
 */
export const CPU_MODEL_LABEL_PREFIX = 'cpu-model.node.kubevirt.io/';
export const CPU_FEATURE_LABEL_PREFIX = 'cpu-feature.node.kubevirt.io/';
/** The KVM device as upstream's extended resource. */
export const KVM_RESOURCE = 'devices.kubevirt.io/kvm';

/**
 * Self-fencing: each virt-handler renews a Lease (coordination.k8s.io) named after its node in
 * KubeVirt's namespace, and tells its launchers until when it holds it. A launcher that hears of
 * no renewal by then stops its guest itself, so once the lease is older than its duration plus a
 * margin, virt-controller knows no guest runs there any more and fails the node's VMIs: a VM that
 * always runs starts on another node, and two of its QEMUs never run at once.
 */
export const FENCING = { renewEveryMs: 5_000, leaseDurationMs: 40_000, marginMs: 20_000 } as const;
export const nodeLeaseName = (node: string) => `virt-handler-${node}`;

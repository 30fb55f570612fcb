// What virt-handler writes on its node and the other components read.
export const HEARTBEAT_ANNOTATION = 'kubevirt.io/heartbeat';
/** Whether guests on the node run in software emulation (no usable KVM, or useEmulation). */
export const EMULATION_ANNOTATION = 'kubevirt.io/software-emulation';
/** The KVM device as upstream's extended resource. */
export const KVM_RESOURCE = 'devices.kubevirt.io/kvm';

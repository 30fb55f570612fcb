// What this node cannot give a guest at all, refused with the field that asks for it.
import { type Concern, refuseAny } from './plan.ts';

export const unsupported: Concern = (vmi) => {
  const { devices = {}, launchSecurity } = vmi.spec.domain;
  refuseAny([
    [devices.gpus?.length, 'spec.domain.devices.gpus', 'GPU passthrough needs host devices, which this node does not offer'],
    [devices.hostDevices?.length, 'spec.domain.devices.hostDevices', 'this node offers no host devices for passthrough'],
    [devices.tpm && devices.tpm.enabled !== false, 'spec.domain.devices.tpm', 'a TPM needs swtpm, which this node does not run'],
    [devices.downwardMetrics, 'spec.domain.devices.downwardMetrics', 'downward metrics need vhostmd, which this node does not run'],
    [devices.autoattachVSOCK, 'spec.domain.devices.autoattachVSOCK', 'VSOCK needs /dev/vhost-vsock, which this node does not offer'],
    [launchSecurity, 'spec.domain.launchSecurity', 'this node cannot run encrypted (SEV/TDX) guests'],
    [devices.clientPassthrough, 'spec.domain.devices.clientPassthrough', 'USB redirection is not available on this node'],
  ]);
  return { argv: [] };
};

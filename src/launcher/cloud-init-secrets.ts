// Cloud-init data a VMI keeps in a Secret (userDataSecretRef /
// networkDataSecretRef): virt-controller mounts each such Secret in the
// launcher pod, and the launcher reads it from there, as upstream's does.
import { readFileSync } from 'node:fs';
import type { VirtualMachineInstance } from '../api/types.ts';
import { cloudInitSecretMountPath } from '../contract/launcher-pod.ts';
import type { VolumePaths } from '../contract/launcher-protocol.ts';
import { ConversionError } from './convert.ts';

/** The Secret keys upstream reads, in its order. */
const KEYS = { userdata: ['userdata', 'userData'], networkdata: ['networkdata', 'networkData'] } as const;

const readIfThere = (path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
};

/** The cloud-init data of each volume that names a Secret; `root` is where the pod's file system is (tests). */
export function readCloudInitSecrets(vmi: VirtualMachineInstance, root = ''): NonNullable<VolumePaths['cloudInitSecrets']> {
  const found: NonNullable<VolumePaths['cloudInitSecrets']> = {};
  for (const [i, volume] of (vmi.spec.volumes ?? []).entries()) {
    const [source, field] = volume.cloudInitNoCloud
      ? [volume.cloudInitNoCloud, 'cloudInitNoCloud']
      : [volume.cloudInitConfigDrive, 'cloudInitConfigDrive'];
    if (!source) continue;
    const read = (kind: keyof typeof KEYS, ref: string) => {
      const dir = `${root}${cloudInitSecretMountPath(volume.name, kind)}`;
      for (const key of KEYS[kind]) {
        const text = readIfThere(`${dir}/${key}`);
        if (text !== undefined) return text;
      }
      throw new ConversionError(`spec.volumes[${i}].${field}.${ref}`, `the Secret has no ${KEYS[kind].join(' or ')} key`);
    };
    const data: { userData?: string; networkData?: string } = {};
    if (source.secretRef?.name) data.userData = read('userdata', 'secretRef');
    if (source.networkDataSecretRef?.name) data.networkData = read('networkdata', 'networkDataSecretRef');
    if (Object.keys(data).length) found[volume.name] = data;
  }
  return found;
}

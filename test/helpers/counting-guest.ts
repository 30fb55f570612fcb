// A guest for migration tests: it writes a line to its boot disk, then counts
// on its serial console once a second, reading that line back each time past
// the page cache, so its console shows both that it never restarted and that
// its disk came along.
export const COUNTING_GUEST_USER_DATA = [
  '#!/bin/sh',
  'echo written-before-migration > /var/marker; sync',
  'i=0; while true; do i=$((i+1)); echo 3 > /proc/sys/vm/drop_caches; echo "count $i $(cat /var/marker)"; sleep 1; done &',
].join('\n');

/** The counts a console log shows, each with the line read back from the disk. */
export const consoleCounts = (log: string) => [...log.matchAll(/count (\d+) (\S+)/g)].map((m) => ({ n: Number(m[1]), marker: m[2] }));

/** An Always VM of the counting guest (the test guest's containerDisk), masqueraded on the pod network. */
export function countingGuestVm(name: string, namespace: string, image: string) {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace },
    spec: {
      runStrategy: 'Always',
      template: {
        spec: {
          domain: {
            devices: {
              disks: [
                { name: 'containerdisk', disk: { bus: 'virtio' } },
                { name: 'cloudinitdisk', disk: { bus: 'virtio' } },
              ],
              interfaces: [{ name: 'default', masquerade: {} }],
            },
            memory: { guest: '128Mi' },
          } as Record<string, unknown> & { devices: { disks: object[] } },
          networks: [{ name: 'default', pod: {} }],
          volumes: [
            { name: 'containerdisk', containerDisk: { image } },
            { name: 'cloudinitdisk', cloudInitNoCloud: { userData: COUNTING_GUEST_USER_DATA } },
          ] as object[],
        } as Record<string, unknown> & { domain: Record<string, unknown> & { devices: { disks: object[] } }; volumes: object[] },
      },
    },
  };
}

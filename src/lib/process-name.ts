// A component's process name, as ps, top and pkill show it: upstream's binary name. The pod
// starts node through a link of that name, but Node names its main thread "MainThread" as it
// boots, and the main thread's name is the process's, so it is set back here. Only the name
// changes: process.title would overwrite the command line, where upstream's tests look for a
// VMI's UID.
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { PROCESS_NAMES } from '../contract/process-names.ts';

/** Names the process after the link it was started through, if that is one of the components' names. */
export function takeProcessName(): void {
  const name = basename(process.argv0);
  if (!(PROCESS_NAMES as readonly string[]).includes(name)) return;
  try {
    writeFileSync('/proc/self/comm', name);
  } catch {
    // Not Linux: the name stays node's.
  }
}

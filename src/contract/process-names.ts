// The names kubevirt-ts's processes run under: upstream's binary names. The images link each to
// node, and a process started through the link carries its name, so ps, top and pkill see
// virt-handler or virt-launcher as they would upstream (upstream's functional tests kill both
// by name).
export const PROCESS_NAMES = [
  'virt-api',
  'virt-controller',
  'virt-handler',
  'virt-launcher',
  'virt-operator',
  'virt-console',
  'cdi-controller',
  'cdi-importer',
] as const;
export type ProcessName = (typeof PROCESS_NAMES)[number];

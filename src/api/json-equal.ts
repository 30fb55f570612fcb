// Objects read from kube-apiserver come back with their keys sorted, while
// objects built here keep the order they were written in, and may carry
// members set to undefined, which JSON leaves out. Comparing their JSON text
// would see a change in every such pair, and a controller would then write
// the same object again on every reconcile.
import { isDeepStrictEqual } from 'node:util';

const asJson = (value: unknown): unknown => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));

/** Whether two values are the same once written as JSON, whatever the order of their keys. */
export const jsonEqual = (a: unknown, b: unknown): boolean => isDeepStrictEqual(asJson(a), asJson(b));

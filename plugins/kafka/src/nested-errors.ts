/** The fields either client's errors are read by (kafkajs: `type`, @platformatic/kafka: `apiId`). */
export interface ErrorLike {
  name?: unknown;
  code?: unknown;
  type?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
  apiId?: unknown;
}

/** Every error inside `error` (either client's): its causes and, for an AggregateError, each of its errors. */
export function errorsIn(error: unknown, depth = 0): ErrorLike[] {
  if (typeof error !== 'object' || error === null || depth > 6) return [];
  const e = error as ErrorLike;
  const nested = Array.isArray(e.errors) ? e.errors.flatMap((x) => errorsIn(x, depth + 1)) : [];
  return [e, ...errorsIn(e.cause, depth + 1), ...nested];
}

import { createHash } from 'node:crypto';
import { DeployNameInvalidError } from './deploy-errors.js';

/** 8 hex digits that tell apart two names that escape to the same text (`a_b`, `a.b`). */
function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

/**
 * A name made of `parts` that fits `allowed` (one character class, its complement replaced by
 * `-`) and `max` characters. A name that had to change, or be shortened, gets a digest of the
 * original, so distinct pipelines and stages never share one.
 */
function escapedName(
  what: string,
  parts: readonly string[],
  options: { lower: boolean; invalid: RegExp; max: number; rule: string },
): string {
  const original = parts.join('-');
  let name = (options.lower ? original.toLowerCase() : original)
    .replace(options.invalid, '-')
    .replace(/-+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
  if (!/[A-Za-z0-9]/.test(name)) throw new DeployNameInvalidError(what, original, options.rule);
  if (name !== original || name.length > options.max) {
    name = `${name.slice(0, options.max - 9).replace(/[-.]+$/, '')}-${digest(original)}`;
  }
  return name;
}

/**
 * A Kubernetes object name that is also a valid label value: DNS-1123 label (lowercase
 * letters, digits and `-`, at most 63, alphanumeric at both ends).
 */
export function kubernetesName(...parts: readonly string[]): string {
  return escapedName('Kubernetes name', parts, {
    lower: true,
    invalid: /[^a-z0-9-]/g,
    max: 63,
    rule: 'it needs letters or digits',
  });
}

/** A systemd unit name prefix (before `@.service`): letters, digits, `:`, `_`, `.`, `-`. */
export function systemdName(...parts: readonly string[]): string {
  return escapedName('systemd unit name', parts, {
    lower: false,
    invalid: /[^A-Za-z0-9:_.-]/g,
    max: 200,
    rule: 'it needs letters or digits',
  });
}

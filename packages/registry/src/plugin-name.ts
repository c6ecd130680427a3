/**
 * Package naming for plugins (as eslint-plugin-*): a short name `acme-hello` means the
 * package `codefeedr-plugin-acme-hello`; a scoped `@acme/hello` means
 * `@acme/codefeedr-plugin-hello`. Names already in full form are kept.
 */
export function pluginPackageName(name: string): string {
  const scoped = /^(@[^/]+)\/(.+)$/.exec(name);
  if (scoped) {
    const [, scope, rest] = scoped;
    if (rest!.startsWith('codefeedr-plugin-') || rest!.startsWith('plugin-')) return name;
    return `${scope}/codefeedr-plugin-${rest}`;
  }
  return name.startsWith('codefeedr-plugin-') ? name : `codefeedr-plugin-${name}`;
}

/** True for a valid npm package name (lowercase, url-safe, optional scope). */
export function isValidPackageName(name: string): boolean {
  return /^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/.test(name) && name.length <= 214;
}

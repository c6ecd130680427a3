import semver from 'semver';
import { RegistrySearchError } from './errors.js';
import type { PackageJson } from './package-json.js';
import { PLUGIN_KEYWORD, type PluginManifest } from './manifest-schema.js';

export interface RemotePlugin {
  readonly name: string;
  readonly version: string;
  readonly description: string;
  /** `name (kind)` of each component in the latest version's manifest. */
  readonly components: readonly { name: string; kind: string; description: string }[];
}

export interface SearchOptions {
  /** Registry base URL, e.g. `https://registry.npmjs.org/`. */
  registry: string;
  /** Bearer token, for registries that require login to read. Never logged. */
  token?: string | undefined;
  /** Maximum results; default 20. */
  size?: number;
  timeoutMs?: number;
}

function registryUrl(registry: string, path: string): URL {
  return new URL(path, registry.endsWith('/') ? registry : `${registry}/`);
}

async function getJson(url: URL, options: SearchOptions): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, {
      headers: {
        accept: 'application/json',
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      },
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
  } catch (error) {
    throw new RegistrySearchError(options.registry, `request failed (${(error as Error).message})`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new RegistrySearchError(
      options.registry,
      `GET ${url.pathname} answered HTTP ${response.status}`,
    );
  }
  return response.json();
}

/**
 * Searches an npm registry for plugins: packages with the `codefeedr-plugin` keyword
 * matching `term`, with the components listed in each latest version's manifest
 * (read from the packument, so nothing is downloaded or installed).
 */
export async function searchPlugins(term: string, options: SearchOptions): Promise<RemotePlugin[]> {
  const text = `keywords:${PLUGIN_KEYWORD}${term ? ` ${term}` : ''}`;
  const url = registryUrl(options.registry, '-/v1/search');
  url.searchParams.set('text', text);
  url.searchParams.set('size', String(options.size ?? 20));
  const body = (await getJson(url, options)) as {
    objects?: {
      package: { name: string; version: string; description?: string; keywords?: string[] };
    }[];
  };
  const hits = (body.objects ?? [])
    .map((o) => o.package)
    // Some registries match the keyword loosely; keep only real plugins.
    .filter((p) => !Array.isArray(p.keywords) || p.keywords.includes(PLUGIN_KEYWORD));
  return Promise.all(
    hits.map(async (hit) => {
      const packument = (await getJson(
        registryUrl(options.registry, hit.name.replace('/', '%2f')),
        options,
      )) as { versions?: Record<string, { codefeedr?: PluginManifest }> };
      const manifest = packument.versions?.[hit.version]?.codefeedr;
      const components = Array.isArray(manifest?.components)
        ? manifest.components.map((c) => ({
            name: c.name,
            kind: c.kind,
            description: c.description,
          }))
        : [];
      return {
        name: hit.name,
        version: hit.version,
        description: hit.description ?? '',
        components,
      };
    }),
  );
}

/**
 * Whether a package exists in the registry; used to expand the short plugin name
 * `acme-hello` to `codefeedr-plugin-acme-hello`.
 */
export async function packageExists(name: string, options: SearchOptions): Promise<boolean> {
  try {
    const response = await fetch(registryUrl(options.registry, name.replace('/', '%2f')), {
      headers: { accept: 'application/vnd.npm.install-v1+json' },
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
    await response.body?.cancel();
    return response.ok;
  } catch (error) {
    throw new RegistrySearchError(options.registry, `request failed (${(error as Error).message})`);
  }
}

/**
 * The package.json of the version `npm install name@spec` would pick (dist-tag, exact
 * version or range; default `latest`), read from the registry without installing.
 * Undefined when the package or a matching version does not exist.
 */
export async function fetchPackageVersion(
  name: string,
  spec: string,
  options: SearchOptions,
): Promise<PackageJson | undefined> {
  let response: Response;
  try {
    response = await fetch(registryUrl(options.registry, name.replace('/', '%2f')), {
      headers: {
        accept: 'application/json',
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      },
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
  } catch (error) {
    throw new RegistrySearchError(options.registry, `request failed (${(error as Error).message})`);
  }
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new RegistrySearchError(options.registry, `GET ${name} answered HTTP ${response.status}`);
  }
  const packument = (await response.json()) as {
    'dist-tags'?: Record<string, string>;
    versions?: Record<string, PackageJson>;
  };
  const versions = packument.versions ?? {};
  const wanted = spec === '' ? 'latest' : spec;
  const tagged = packument['dist-tags']?.[wanted];
  if (tagged) return versions[tagged];
  if (versions[wanted]) return versions[wanted];
  const best = semver.maxSatisfying(Object.keys(versions), wanted, { includePrerelease: true });
  return best ? versions[best] : undefined;
}

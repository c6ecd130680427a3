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

interface SearchHit {
  name: string;
  version?: string;
  description?: string;
  keywords?: string[];
  'dist-tags'?: Record<string, string>;
}

async function searchText(
  text: string,
  size: number,
  options: SearchOptions,
): Promise<SearchHit[]> {
  const url = registryUrl(options.registry, '-/v1/search');
  url.searchParams.set('text', text);
  url.searchParams.set('size', String(size));
  const body = (await getJson(url, options)) as { objects?: { package: SearchHit }[] };
  return (body.objects ?? []).map((o) => o.package);
}

const isPlugin = (hit: SearchHit): boolean =>
  Array.isArray(hit.keywords) && hit.keywords.includes(PLUGIN_KEYWORD);

/**
 * Searches an npm registry for plugins: packages with the `codefeedr-plugin` keyword
 * matching `term`, with the components listed in each latest version's manifest
 * (read from the packument, so nothing is downloaded or installed). The registry's
 * `keywords:` qualifier is used first (npmjs); registries without it (Verdaccio) get a
 * plain text search whose hits are filtered by keyword here.
 */
export async function searchPlugins(term: string, options: SearchOptions): Promise<RemotePlugin[]> {
  const size = options.size ?? 20;
  let hits = (
    await searchText(`keywords:${PLUGIN_KEYWORD}${term ? ` ${term}` : ''}`, size, options)
  ).filter(isPlugin);
  if (hits.length === 0) {
    hits = (await searchText(term || PLUGIN_KEYWORD, 250, options)).filter(isPlugin).slice(0, size);
  }
  return Promise.all(
    hits.map(async (hit) => {
      const packument = (await getJson(
        registryUrl(options.registry, hit.name.replace('/', '%2f')),
        options,
      )) as {
        versions?: Record<string, { codefeedr?: PluginManifest }>;
        'dist-tags'?: Record<string, string>;
      };
      // npmjs puts the version on the hit; Verdaccio only its dist-tags.
      const version =
        hit.version ?? hit['dist-tags']?.['latest'] ?? packument['dist-tags']?.['latest'] ?? '';
      const manifest = packument.versions?.[version]?.codefeedr;
      const components = Array.isArray(manifest?.components)
        ? manifest.components.map((c) => ({
            name: c.name,
            kind: c.kind,
            description: c.description,
          }))
        : [];
      return { name: hit.name, version, description: hit.description ?? '', components };
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

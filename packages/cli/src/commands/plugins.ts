import type { Command } from 'commander';
import {
  discoverPlugins,
  fetchPackageVersion,
  isValidPackageName,
  pluginPackageProblem,
  PLUGIN_KEYWORD,
  type PackageJson,
  packageExists,
  pluginPackageName,
  searchPlugins,
  type DiscoveredPlugin,
  type PluginCatalog,
} from '@codefeedr/registry';
import type { CommandContext } from '../program.js';
import type { CommandOutput } from '../command-output.js';
import {
  NotAPluginError,
  PackageNameInvalidError,
  PluginNotInstalledError,
  PluginSourceInvalidError,
} from '../cli-errors.js';
import { ExitCode } from '../exit-codes.js';
import { npmRegistry, runNpm } from '../npm-client.js';
import { pluginSource, projectDependencies } from '../plugin-source.js';
import { configKeys, describeConfigKey } from '../config-keys.js';

/** Refuses a package whose package.json already shows it cannot work here. */
function checkBeforeInstall(pkg: PackageJson, name: string, coreVersion: string | undefined): void {
  const problem = isPluginPackage(pkg)
    ? pluginPackageProblem(pkg, coreVersion)
    : new NotAPluginError(name, false);
  if (problem) throw problem;
}

function isPluginPackage(pkg: PackageJson): boolean {
  return (
    (Array.isArray(pkg.keywords) && pkg.keywords.includes(PLUGIN_KEYWORD)) ||
    pkg['codefeedr'] !== undefined
  );
}

function describePlugin(plugin: DiscoveredPlugin) {
  return {
    name: plugin.name,
    version: plugin.version,
    description: plugin.description,
    source: plugin.source,
    coreRange: plugin.coreRange ?? null,
    ok: plugin.problem === undefined,
    problem: plugin.problem ? { code: plugin.problem.code, message: plugin.problem.message } : null,
    components: (plugin.manifest?.components ?? []).map((c) => ({
      id: `${plugin.name}:${c.name}`,
      name: c.name,
      kind: c.kind,
      description: c.description,
      inputTypes: c.inputTypes ?? [],
      outputType: c.outputType ?? null,
      guarantees: c.guarantees ?? [],
      configSchema: c.configSchema,
      configKeys: configKeys(c.configSchema),
    })),
  };
}

/** An installed plugin by full name or a short form. */
function findInstalled(catalog: PluginCatalog, name: string): DiscoveredPlugin {
  // Short forms: acme-hello → codefeedr-plugin-acme-hello; official ones: redis → @codefeedr/plugin-redis.
  const candidates = [
    name,
    pluginPackageName(name),
    `@codefeedr/${name}`,
    `@codefeedr/plugin-${name}`,
  ];
  const plugin = candidates.map((c) => catalog.plugin(c)).find((p) => p !== undefined);
  if (!plugin) throw new PluginNotInstalledError(name);
  return plugin;
}

function printPlugin(out: CommandOutput, plugin: DiscoveredPlugin, details: boolean): void {
  const c = out.colors;
  const status = plugin.problem ? c.red('✗') : c.green('✓');
  out.line(
    `${status} ${c.bold(plugin.name)}@${plugin.version} ${c.dim(`(${plugin.source})`)}${plugin.description ? ` ${plugin.description}` : ''}`,
  );
  for (const component of plugin.manifest?.components ?? []) {
    out.line(
      `    ${component.kind.padEnd(9)} ${plugin.name}:${component.name}  ${c.dim(component.description)}`,
    );
    if (details) {
      if (component.inputTypes?.length)
        out.line(`              inputs: ${component.inputTypes.join(', ')}`);
      if (component.outputType) out.line(`              output: ${component.outputType}`);
      for (const key of configKeys(component.configSchema))
        out.line(`              ${describeConfigKey(key)}`);
    }
  }
  if (plugin.problem) out.line(`    ${c.red(plugin.problem.message.split('\n').join('\n    '))}`);
}

export function registerPluginsCommand(program: Command, context: CommandContext): void {
  const plugins = program
    .command('plugins')
    .description('List, inspect, search, add and remove plugins.');

  plugins
    .command('list')
    .description(
      'List installed plugins and their components (exit 2 if any plugin has a problem).',
    )
    .option('--all', 'include the core built-ins')
    .action((options: { all?: boolean }, command: Command) => {
      const out = context.output(command);
      try {
        const catalog = discoverPlugins(out.io.cwd);
        const list = catalog.plugins.filter((p) => options.all || p.source !== 'builtin');
        out.data({ ok: list.every((p) => !p.problem), plugins: list.map(describePlugin) });
        if (list.length === 0)
          out.line('No plugins installed. Find some with `codefeedr plugins search <term>`.');
        for (const plugin of list) printPlugin(out, plugin, false);
        if (list.some((p) => p.problem)) context.exitCode = ExitCode.INVALID_INPUT;
      } catch (error) {
        context.exitCode = out.failure(error);
      }
    });

  plugins
    .command('info')
    .description('Show one installed plugin: components, message types, config keys.')
    .argument(
      '<name>',
      'package name, or the short form (acme-hello for codefeedr-plugin-acme-hello)',
    )
    .action((name: string, _options: unknown, command: Command) => {
      const out = context.output(command);
      try {
        const plugin = findInstalled(discoverPlugins(out.io.cwd), name);
        out.data({ ok: plugin.problem === undefined, plugin: describePlugin(plugin) });
        printPlugin(out, plugin, true);
        if (plugin.problem) context.exitCode = ExitCode.INVALID_INPUT;
      } catch (error) {
        context.exitCode = out.failure(error);
      }
    });

  plugins
    .command('search')
    .description('Search the npm registry for plugins (keyword codefeedr-plugin).')
    .argument('[term]', 'search term', '')
    .option('--registry <url>', 'registry to search (default: npm config get registry)')
    .action(async (term: string, options: { registry?: string }, command: Command) => {
      const out = context.output(command);
      try {
        const registry = options.registry ?? (await npmRegistry(out.io.cwd, out.io.env));
        const results = await searchPlugins(term, { registry });
        out.data({ ok: true, registry, results });
        if (results.length === 0) out.line(`No plugins match "${term}" on ${registry}.`);
        for (const r of results) {
          out.line(`${out.colors.bold(r.name)}@${r.version}  ${r.description}`);
          for (const component of r.components)
            out.line(
              `    ${component.kind.padEnd(9)} ${component.name}  ${out.colors.dim(component.description)}`,
            );
        }
      } catch (error) {
        context.exitCode = out.failure(error);
      }
    });

  plugins
    .command('add')
    .description(
      'Install a plugin with npm and verify its manifest (removed again if it is invalid).',
    )
    .argument(
      '<name>',
      'package name (a version or tag may follow @), the short form acme-hello, a folder, a .tgz tarball (file or URL) or a git URL',
    )
    .option('--registry <url>', 'registry to install from (default: npm config get registry)')
    .option('-D, --save-dev', 'save as a devDependency')
    .action(
      async (spec: string, options: { registry?: string; saveDev?: boolean }, command: Command) => {
        const out = context.output(command);
        try {
          const source = pluginSource(spec, out.io.cwd);
          const before = discoverPlugins(out.io.cwd);
          let packageName: string | undefined;
          let installSpec: string;
          if (source.kind === 'registry') {
            const { name, range } = source;
            if (!isValidPackageName(name)) throw new PackageNameInvalidError(name);
            const registry = options.registry ?? (await npmRegistry(out.io.cwd, out.io.env));
            // The short form names the conventional package when the registry has it.
            const full = pluginPackageName(name);
            packageName = full !== name && (await packageExists(full, { registry })) ? full : name;
            // Refuse before installing when the registry already shows it cannot work here.
            const published = await fetchPackageVersion(packageName, range.slice(1), {
              registry,
            });
            if (published) checkBeforeInstall(published, packageName, before.coreVersion);
            installSpec = `${packageName}${range}`;
          } else {
            if (source.kind === 'folder' && source.pkg === undefined)
              throw new PluginSourceInvalidError(spec, 'it is not a folder with a package.json');
            const pkg = source.kind === 'git' ? undefined : source.pkg;
            if (pkg) {
              packageName = pkg.name;
              checkBeforeInstall(pkg, pkg.name ?? spec, before.coreVersion);
            }
            installSpec = source.spec;
          }
          const dependencies = projectDependencies(out.io.cwd);
          const npmArgs = [
            'install',
            installSpec,
            ...(options.saveDev ? ['--save-dev'] : []),
            ...(options.registry ? ['--registry', options.registry] : []),
          ];
          out.note(`npm ${npmArgs.join(' ')}`);
          await runNpm(npmArgs, {
            cwd: out.io.cwd,
            env: out.io.env,
            echo: out.json || !out.verbose ? undefined : out.io.stderr,
          });
          // A git URL (or a remote tarball) says its name only once installed: the dependency npm added.
          packageName ??= [...projectDependencies(out.io.cwd)].find(
            ([name, value]) => dependencies.get(name) !== value,
          )?.[0];
          if (packageName === undefined)
            throw new PluginSourceInvalidError(
              spec,
              'npm installed it, but no new dependency names it',
            );
          const plugin = discoverPlugins(out.io.cwd).plugin(packageName);
          const problem = plugin ? plugin.problem : new NotAPluginError(packageName);
          if (problem) {
            out.note(`removing ${packageName} again: it cannot be used`);
            await runNpm(['uninstall', packageName], { cwd: out.io.cwd, env: out.io.env });
            throw problem;
          }
          out.data({ ok: true, plugin: describePlugin(plugin!) });
          out.line(`${out.colors.green('✓')} added ${packageName}@${plugin!.version}`);
          printPlugin(out, plugin!, false);
        } catch (error) {
          context.exitCode = out.failure(error);
        }
      },
    );

  plugins
    .command('remove')
    .description('Uninstall a plugin with npm.')
    .argument('<name>', 'package name, or the short form')
    .action(async (name: string, _options: unknown, command: Command) => {
      const out = context.output(command);
      try {
        const plugin = findInstalled(discoverPlugins(out.io.cwd), name);
        await runNpm(['uninstall', plugin.name], { cwd: out.io.cwd, env: out.io.env });
        out.data({ ok: true, removed: plugin.name });
        out.line(`${out.colors.green('✓')} removed ${plugin.name}`);
      } catch (error) {
        context.exitCode = out.failure(error);
      }
    });
}

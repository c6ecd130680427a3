import { CodefeedrError } from '@codefeedr/core';

/** The command line itself is wrong: unknown option, missing argument, bad value. */
export class UsageError extends CodefeedrError {
  constructor(message: string) {
    super('USAGE_INVALID', `${message} (see \`codefeedr --help\`).`);
  }
}

/** npm exited with an error while installing or removing a plugin. */
export class NpmCommandError extends CodefeedrError {
  constructor(args: readonly string[], exitCode: number | null, output: string) {
    const tail = output.trim().split('\n').slice(-8).join('\n');
    super(
      'NPM_FAILED',
      `\`npm ${args.join(' ')}\` failed (exit ${exitCode ?? 'signal'}):\n${tail}\nCheck the package name and the registry (\`npm config get registry\`).`,
      { args, exitCode },
    );
  }
}

export class PluginNotInstalledError extends CodefeedrError {
  constructor(name: string) {
    super(
      'PLUGIN_NOT_INSTALLED',
      `No installed plugin is named "${name}". Run \`codefeedr plugins list\` to see the installed ones, or \`codefeedr plugins add ${name}\` to install it.`,
      { name },
    );
  }
}

/** `plugins add` installed a package that is not a CodeFeedr plugin at all. */
export class NotAPluginError extends CodefeedrError {
  constructor(name: string, installed = true) {
    super(
      'NOT_A_PLUGIN',
      `"${name}" is not a CodeFeedr plugin (no "codefeedr-plugin" keyword nor "codefeedr" manifest)${installed ? ', so it was removed again' : ''}. Search for plugins with \`codefeedr plugins search <term>\`.`,
      { name },
    );
  }
}

/** `plugins add` was given a folder, tarball or git URL it cannot install a plugin from. */
export class PluginSourceInvalidError extends CodefeedrError {
  constructor(spec: string, why: string) {
    super(
      'PLUGIN_SOURCE_INVALID',
      `Cannot add a plugin from ${spec}: ${why}. Give a package name, a plugin folder (with its package.json), a .tgz made by \`npm pack\`, or a git URL (git+https://…, github:user/repo).`,
      { spec },
    );
  }
}

export class ScaffoldTargetExistsError extends CodefeedrError {
  constructor(dir: string) {
    super(
      'SCAFFOLD_TARGET_EXISTS',
      `${dir} already exists and is not empty. Choose another name or pass --dir <empty folder>.`,
      { dir },
    );
  }
}

/** The scaffold's target folder cannot be created (a read-only or virtual file system, a file in the way). */
export class ScaffoldTargetUnwritableError extends CodefeedrError {
  constructor(dir: string, code: string, blocker?: string) {
    const why: Record<string, string> = {
      EACCES: 'permission denied',
      EPERM: 'the file system does not allow it',
      ENOENT: 'the file system does not allow creating folders there',
      EROFS: 'the file system is read-only',
      ENOTDIR: `${blocker ?? 'a part of the path'} is a file, not a folder`,
      ENAMETOOLONG: 'the path is too long',
    };
    super(
      'SCAFFOLD_TARGET_UNWRITABLE',
      `Cannot create the plugin folder ${dir}: ${why[code] ?? code}. Pass --dir <a folder you can write to>.`,
      { dir, code },
    );
  }
}

export class PackageNameInvalidError extends CodefeedrError {
  constructor(name: string) {
    super(
      'PACKAGE_NAME_INVALID',
      `"${name}" is not a valid plugin name: use lowercase letters, digits and dashes, optionally with an @scope/ prefix (e.g. acme-hello or @acme/hello).`,
      { name },
    );
  }
}

export class ManifestOutOfSyncError extends CodefeedrError {
  constructor(packageName: string) {
    super(
      'MANIFEST_OUT_OF_SYNC',
      `The "codefeedr" manifest in ${packageName}'s package.json differs from what its built module declares. Run \`codefeedr manifest\` (after building) and commit the result.`,
      { packageName },
    );
  }
}

import { link, mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/* File I/O shared by the file checkpoint and state stores (not exported from the package). */

/** A name made safe as a file name: `[A-Za-z0-9._-]`, anything else `_`. */
export const safeName = (name: string) => name.replace(/[^A-Za-z0-9._-]/g, '_');

/** A file's text, or undefined when it does not exist. */
export async function readFileIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function writeSynced(file: string, tmp: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(tmp, text);
  const handle = await open(tmp, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `text` to `tmp`, fsyncs it and renames it over `file`: a crash leaves the old file. */
export async function replaceFileAtomically(
  file: string,
  tmp: string,
  text: string,
): Promise<void> {
  await writeSynced(file, tmp, text);
  await rename(tmp, file);
}

/**
 * Publishes `text` as `file` only if no `file` exists yet, whole or not at all (write `tmp`,
 * fsync, hard-link: link fails on an existing name, also between processes). False when
 * `file` existed.
 */
export async function createFileExclusively(
  file: string,
  tmp: string,
  text: string,
): Promise<boolean> {
  await writeSynced(file, tmp, text);
  try {
    await link(tmp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(tmp);
  }
}

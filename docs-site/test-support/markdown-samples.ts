// The samples of the hand-written pages: fenced code blocks and VitePress snippet imports
// (`<<< @/examples/…`), with the doc-test marker a block may carry. The generated pages (CLI,
// error codes, catalogue, API) are made from the code and carry no hand-written samples.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface FencedBlock {
  page: string;
  line: number;
  lang: string;
  code: string;
  /** The reason given by a `<!-- doc-test: not run — reason -->` line right above it. */
  notRun?: string;
}

export interface SnippetImport {
  page: string;
  line: number;
  /** Absolute path of the included file. */
  file: string;
}

const PAGE_DIRS = ['.', 'concepts', 'guides', 'reference'];

/** Every hand-written page, relative to docs-site. */
export function handWrittenPages(site: string): string[] {
  return PAGE_DIRS.flatMap((dir) =>
    readdirSync(join(site, dir))
      .filter((f) => f.endsWith('.md') && !(dir === '.' && f === 'README.md'))
      .map((f) => relative(site, join(site, dir, f))),
  ).sort();
}

export function pageSamples(
  site: string,
  page: string,
): { blocks: FencedBlock[]; imports: SnippetImport[] } {
  const lines = readFileSync(join(site, page), 'utf8').split('\n');
  const blocks: FencedBlock[] = [];
  const imports: SnippetImport[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const snippet = /^<<<\s+@\/(\S+?)(?:\{[^}]*\})?(?:\s.*)?$/.exec(line);
    if (snippet) {
      imports.push({ page, line: i + 1, file: join(site, snippet[1]!.replace(/#.*$/, '')) });
      continue;
    }
    // A fence may be indented (a block inside a list item): its body loses that indent.
    const fence = /^( *)```(\S*)/.exec(line);
    if (!fence) continue;
    const indent = fence[1]!;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith(`${indent}\`\`\``); i++)
      body.push(
        lines[i]!.startsWith(indent) ? lines[i]!.slice(indent.length) : lines[i]!.trimStart(),
      );
    // The marker line is the last non-blank line above the fence (prettier puts a blank between).
    let above = start - 1;
    while (above >= 0 && lines[above]!.trim() === '') above--;
    const marker = /^\s*<!--\s*doc-test:\s*not run\s*[—-]\s*(.+?)\s*-->$/.exec(lines[above] ?? '');
    blocks.push({
      page,
      line: start + 1,
      lang: fence[2]!.replace(/[{[].*$/, ''),
      code: body.join('\n'),
      ...(marker ? { notRun: marker[1]! } : {}),
    });
  }
  return { blocks, imports };
}

export function allSamples(site: string): { blocks: FencedBlock[]; imports: SnippetImport[] } {
  const blocks: FencedBlock[] = [];
  const imports: SnippetImport[] = [];
  for (const page of handWrittenPages(site)) {
    const samples = pageSamples(site, page);
    blocks.push(...samples.blocks);
    imports.push(...samples.imports);
  }
  return { blocks, imports };
}

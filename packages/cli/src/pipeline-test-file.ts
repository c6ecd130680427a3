import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CodefeedrError, type JsonValue } from '@codefeedr/core';
import { isMap, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';

/** One step of a test's input to a stage, in order. */
export type TestStep =
  | { kind: 'records'; records: TestRecord[] }
  /** An upstream watermark (event time reached `watermark`), for stages without their own assigner. */
  | { kind: 'watermark'; watermark: number }
  /** Processing time moves on by `ms` (idle inputs, processing-time timers). */
  | { kind: 'advanceTime'; ms: number };

export interface TestRecord {
  value: JsonValue;
  timestamp?: number | undefined;
  key?: string | undefined;
  headers?: Record<string, string> | undefined;
}

export interface ExpectedRecord {
  value: JsonValue;
  /** Checked only when the test gives it. */
  timestamp?: number;
  key?: string | null;
}

export interface PipelineTestCase {
  name: string;
  /** Environment for the pipeline's `${VAR}`s (on top of the real one). */
  env: Record<string, string>;
  /** `stageId.key=value` overrides, as `run --set`. */
  set: string[];
  /** Processing time at the start (epoch ms); default 0. */
  startTime: number;
  /** Input stage id → what it emits, step by step (all inputs in file order). */
  input: { stage: string; steps: TestStep[] }[];
  /** Stage id → the records it emits (for an output stage: what it receives). */
  expect: Map<string, ExpectedRecord[]>;
  /** Stage id → how many records it dead-letters. */
  deadLetters: Map<string, number>;
  /** Compare as multisets (window results of several keys fire together). Default true: in order. */
  ordered: boolean;
  /** End every input after the steps (fires pending windows), as a bounded run does. Default true. */
  finish: boolean;
}

export interface PipelineTestFile {
  file: string;
  /** The pipeline file, absolute. */
  pipeline: string;
  tests: PipelineTestCase[];
}

/** A test file is malformed: every problem, with file:line:column. */
export class PipelineTestFileError extends CodefeedrError {
  constructor(file: string, problems: readonly string[]) {
    super(
      'PIPELINE_TEST_INVALID',
      `Test file ${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  ${p}`).join('\n')}\nSee \`codefeedr test --help\` and the CLI README for the format.`,
      { file, problems },
    );
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads a pipeline test file (YAML):
 *
 *     pipeline: pipeline.yaml
 *     tests:
 *       - name: counts per window
 *         input:
 *           clicks:                      # an input stage: what it emits, in order
 *             - { value: { page: /a }, timestamp: 1000 }
 *             - { advanceTime: 5000 }     # processing time (idleness)
 *             - { watermark: 60000 }      # an upstream watermark
 *             - { file: more.ndjson, timestampField: at }
 *         expect:
 *           counts: [ { value: { page: /a, views: 1 }, timestamp: 59999 } ]
 *         deadLetters: { clicks: 0 }
 */
export function readPipelineTestFile(file: string, shown = file): PipelineTestFile {
  const text = readFileSync(file, 'utf8');
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  const problems: string[] = [];
  const at = (path: (string | number)[]) => {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = (depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true)) as
        YamlNode | undefined;
      if (node && (isMap(node) || isSeq(node) || 'range' in node) && node.range) {
        const { line, col } = lineCounter.linePos(node.range[0]);
        return `${shown}:${line}:${col}`;
      }
    }
    return shown;
  };
  const problem = (path: (string | number)[], message: string) =>
    problems.push(`${at(path)}: ${message}`);
  for (const error of doc.errors)
    problems.push(`${shown}: YAML syntax error: ${error.message.split('\n')[0]}`);
  if (problems.length > 0) throw new PipelineTestFileError(shown, problems);

  const data = doc.toJS() as unknown;
  if (!isObject(data) || typeof data['pipeline'] !== 'string' || !Array.isArray(data['tests'])) {
    throw new PipelineTestFileError(shown, [
      `${shown}: a test file is a mapping with \`pipeline: <file>\` and \`tests: [...]\``,
    ]);
  }
  const base = dirname(file);
  const tests: PipelineTestCase[] = [];
  data['tests'].forEach((raw: unknown, i: number) => {
    const path = ['tests', i];
    if (!isObject(raw)) return problem(path, 'each test is a mapping with name, input and expect');
    for (const key of Object.keys(raw)) {
      if (
        ![
          'name',
          'env',
          'set',
          'startTime',
          'input',
          'expect',
          'deadLetters',
          'ordered',
          'finish',
        ].includes(key)
      )
        problem([...path, key], `unknown test field "${key}"`);
    }
    const name = typeof raw['name'] === 'string' ? raw['name'] : `test ${i + 1}`;
    const env: Record<string, string> = {};
    if (raw['env'] !== undefined) {
      if (!isObject(raw['env'])) problem([...path, 'env'], '`env` is a mapping of NAME: value');
      else for (const [k, v] of Object.entries(raw['env'])) env[k] = String(v);
    }
    const set = raw['set'] ?? [];
    if (!Array.isArray(set) || set.some((s) => typeof s !== 'string'))
      problem([...path, 'set'], '`set` is a list of stageId.key=value');
    const input: PipelineTestCase['input'] = [];
    if (!isObject(raw['input']))
      problem([...path, 'input'], '`input` maps input stage ids to their records');
    else {
      for (const [stage, steps] of Object.entries(raw['input'])) {
        const stepPath = [...path, 'input', stage];
        if (!Array.isArray(steps)) {
          problem(
            stepPath,
            'an input is a list of records, { watermark }, { advanceTime } and { file } steps',
          );
          continue;
        }
        input.push({
          stage,
          steps: steps.flatMap((s: unknown, j: number) => step(s, [...stepPath, j])),
        });
      }
    }
    const expect = new Map<string, ExpectedRecord[]>();
    if (!isObject(raw['expect']))
      problem([...path, 'expect'], '`expect` maps stage ids to the records they emit');
    else {
      for (const [stage, records] of Object.entries(raw['expect'])) {
        const recordsPath = [...path, 'expect', stage];
        if (!Array.isArray(records)) {
          problem(recordsPath, 'expected records are a list of { value, timestamp?, key? }');
          continue;
        }
        expect.set(
          stage,
          records.flatMap((r: unknown, j: number) => {
            if (!isObject(r) || !('value' in r)) {
              problem([...recordsPath, j], 'an expected record is { value, timestamp?, key? }');
              return [];
            }
            return [
              {
                value: r['value'] as JsonValue,
                ...(typeof r['timestamp'] === 'number' ? { timestamp: r['timestamp'] } : {}),
                ...('key' in r ? { key: r['key'] === null ? null : String(r['key']) } : {}),
              },
            ];
          }),
        );
      }
    }
    const deadLetters = new Map<string, number>();
    if (raw['deadLetters'] !== undefined) {
      if (!isObject(raw['deadLetters']))
        problem([...path, 'deadLetters'], '`deadLetters` maps stage ids to counts');
      else
        for (const [stage, n] of Object.entries(raw['deadLetters'])) {
          if (!Number.isInteger(n) || (n as number) < 0)
            problem([...path, 'deadLetters', stage], 'a dead-letter count is a whole number');
          else deadLetters.set(stage, n as number);
        }
    }
    tests.push({
      name,
      env,
      set: Array.isArray(set) ? (set as string[]) : [],
      startTime: typeof raw['startTime'] === 'number' ? raw['startTime'] : 0,
      input,
      expect,
      deadLetters,
      ordered: raw['ordered'] !== false,
      finish: raw['finish'] !== false,
    });
  });

  function step(raw: unknown, path: (string | number)[]): TestStep[] {
    if (!isObject(raw)) {
      problem(path, 'a step is { value, timestamp? }, { watermark }, { advanceTime } or { file }');
      return [];
    }
    if ('watermark' in raw) {
      if (typeof raw['watermark'] !== 'number') problem(path, '`watermark` is event time in ms');
      return [{ kind: 'watermark', watermark: Number(raw['watermark']) }];
    }
    if ('advanceTime' in raw) {
      if (!(typeof raw['advanceTime'] === 'number' && raw['advanceTime'] >= 0))
        problem(path, '`advanceTime` is a duration in ms, >= 0');
      return [{ kind: 'advanceTime', ms: Number(raw['advanceTime']) }];
    }
    if ('file' in raw) return [{ kind: 'records', records: fileRecords(raw, path) }];
    if (!('value' in raw)) {
      problem(path, 'a record step needs `value` (or use watermark, advanceTime or file)');
      return [];
    }
    if (raw['timestamp'] !== undefined && typeof raw['timestamp'] !== 'number')
      problem(path, '`timestamp` is event time in ms');
    return [
      {
        kind: 'records',
        records: [
          {
            value: raw['value'] as JsonValue,
            timestamp: raw['timestamp'] as number | undefined,
            key: raw['key'] === undefined ? undefined : String(raw['key']),
            headers: isObject(raw['headers'])
              ? (raw['headers'] as Record<string, string>)
              : undefined,
          },
        ],
      },
    ];
  }

  /** `{ file: x.ndjson, timestampField?, keyField? }`: one record per line, relative to the test file. */
  function fileRecords(raw: Record<string, unknown>, path: (string | number)[]): TestRecord[] {
    const target = resolve(base, String(raw['file']));
    let lines: string[];
    try {
      lines = readFileSync(target, 'utf8').split('\n');
    } catch (error) {
      problem(
        path,
        `cannot read ${target} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      );
      return [];
    }
    const field = (value: unknown, dotted: unknown) =>
      typeof dotted === 'string'
        ? dotted.split('.').reduce<unknown>((v, k) => (isObject(v) ? v[k] : undefined), value)
        : undefined;
    const records: TestRecord[] = [];
    lines.forEach((line, n) => {
      if (line.trim() === '') return;
      let value: JsonValue;
      try {
        value = JSON.parse(line) as JsonValue;
      } catch {
        problem(path, `${target}:${n + 1} is not JSON`);
        return;
      }
      const ts = field(value, raw['timestampField']);
      const timestamp =
        typeof ts === 'number' ? ts : typeof ts === 'string' ? Date.parse(ts) : undefined;
      const key = field(value, raw['keyField']);
      records.push({ value, timestamp, key: key === undefined ? undefined : String(key) });
    });
    return records;
  }

  if (problems.length > 0) throw new PipelineTestFileError(shown, problems);
  return { file: shown, pipeline: resolve(base, data['pipeline']), tests };
}

// Names deploy derives from pipeline and stage ids, and the `${VAR}`s it finds in a file.
import { describe, expect, it } from 'vitest';
import { DeployNameInvalidError } from './deploy-errors.js';
import { kubernetesName, systemdName } from './deploy-names.js';
import { parseReplicas, pipelineVariables } from './deploy-plan.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

describe('deploy names', () => {
  it('keeps a valid name, escapes others with a digest so distinct ids never collide, and fits 63 characters', () => {
    expect(kubernetesName('clicks', 'sink')).toBe('clicks-sink');
    const escaped = ['a_b', 'a.b', 'A-b', 'a b', 'a--b'].map((id) => kubernetesName('p', id));
    expect(new Set(escaped).size).toBe(escaped.length);
    const long = kubernetesName('p'.repeat(50), 's'.repeat(50));
    for (const name of [...escaped, long, kubernetesName('-x-'), kubernetesName('Ünïcode')])
      expect(name).toMatch(DNS_LABEL);
    expect(long).not.toBe(kubernetesName('p'.repeat(50), `${'s'.repeat(49)}t`));
    expect(() => kubernetesName('...')).toThrow(DeployNameInvalidError);
    expect(systemdName('codefeedr', 'clicks', 'sink.v2')).toBe('codefeedr-clicks-sink.v2');
    expect(systemdName('codefeedr', 'my pipeline', 's')).toMatch(
      /^codefeedr-my-pipeline-s-[0-9a-f]{8}$/,
    );
  });

  it('finds every ${VAR} of the values as the registry reads them: defaults optional, $${ escaped, comments skipped', () => {
    const text = [
      '# ${IN_A_COMMENT}',
      'name: p',
      "buffer: { use: kafka, with: { brokers: '${BROKERS}' } }",
      'stages:',
      '  - { id: a, use: sequence, with: { to: "${COUNT:-5}", from: "$${LITERAL}" } }',
      '  - { id: b, use: x, from: a, with: { url: "redis://u:${PASSWORD}@h/${DB:-0}", again: "${COUNT}" } }',
      '',
    ].join('\n');
    expect(pipelineVariables(text)).toEqual([
      { name: 'BROKERS', optional: false },
      { name: 'COUNT', optional: false }, // once without a default: required
      { name: 'PASSWORD', optional: false },
      { name: 'DB', optional: true },
    ]);
  });

  it('parses --replicas as a default and per stage, refusing what is not a count', () => {
    const request = parseReplicas(['3', 'sink=2', 'a.b=c=1']);
    expect(request.all).toBe(3);
    expect([...request.byStage]).toEqual([
      ['sink', 2],
      ['a.b=c', 1],
    ]);
    for (const bad of ['0', 'x', 'sink=', '=2', 'sink=-1'])
      expect(() => parseReplicas([bad]), bad).toThrow(/--replicas/);
  });
});

// A transform stage between core's built-in input and output, run in both single-process modes.
// Run from the repository root: node docs-site/examples/ts/squares.ts
import {
  PipelineBuilder,
  SequenceNumber,
  defineTransform,
  printerOutput,
  sequenceInput,
  z,
} from '@codefeedr/core';

const squares = defineTransform({
  name: 'squares',
  description: 'Squares each number.',
  configSchema: z.object({}),
  inputTypes: [SequenceNumber],
  outputType: SequenceNumber,
  transform: ([numbers]) => numbers.map((n) => n * n),
});

const pipeline = new PipelineBuilder('squares')
  .append(sequenceInput.create('numbers', { from: 1, to: 5 }))
  .append(squares.create('square'))
  .append(printerOutput.create('print'))
  .build();

const summary = await pipeline.run(); // inline: prints 1, 4, 9, 16, 25, one per line
console.error(summary.status); // "finished"
await pipeline.run({ mode: 'local' }); // the same output, every edge through the memory buffer

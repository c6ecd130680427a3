/**
 * Every record header name CodeFeedr itself writes, in one place: buffers must carry them
 * unchanged, and user code should not set them. Stable across versions.
 */

/** A control message between stages through a buffer (value: `end`); never data. */
export const CONTROL_HEADER = 'codefeedr-control';
/** On an end marker: `{"stage","covered":[...],"total":N,"run"}` (see end-of-stream.ts). */
export const END_HEADER = 'codefeedr-end';
/** On a record a source could not parse: the problem; the raw input is the value. */
export const SOURCE_ERROR_HEADER = 'codefeedr-source-error';
/** The file and 1-based line a file input read a bad record from. */
export const SOURCE_FILE_HEADER = 'codefeedr-source-file';
export const SOURCE_LINE_HEADER = 'codefeedr-source-line';
/** On a dead letter: the error's code and the stage that refused the record. */
export const DEAD_LETTER_ERROR_CODE_HEADER = 'codefeedr-error-code';
export const DEAD_LETTER_STAGE_HEADER = 'codefeedr-stage';

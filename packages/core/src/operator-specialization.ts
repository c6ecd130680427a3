/*
 * Chains are compiled to code specialised per operator instance. V8 keeps type feedback
 * per function: if every map operator in a process ran through one shared `push`, its call
 * to the user function and to the next operator would soon be megamorphic and never
 * inlined. So the hot push functions are written as self-contained factories (they use
 * only their parameters) and each operator instance gets its closure from a fresh copy of
 * the factory (`new Function` of its source): its own feedback, monomorphic calls, and
 * V8 inlines the whole chain into one loop, as in Flink's operator chaining.
 * Where code generation is not allowed (--disallow-code-generation-from-strings), the
 * shared factory is used: same behaviour, slower.
 */

let codegenAllowed = process.env.CODEFEEDR_NO_CODEGEN !== '1';

/** A fresh copy of `factory`; closures it makes do not share type feedback with other copies. */
export function freshCopy<F extends (...args: never[]) => unknown>(factory: F): F {
  if (!codegenAllowed) return factory;
  try {
    return new Function(`return (${factory.toString()});`)() as F;
  } catch {
    codegenAllowed = false;
    return factory;
  }
}

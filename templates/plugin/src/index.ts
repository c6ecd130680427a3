// Every component exported here is listed in package.json's "codefeedr" manifest by
// `codefeedr manifest` (run by `npm run build`); manifest.test.ts keeps the two in sync.
export { Greeting, type GreetingValue } from './greeting.js';
export { greetingsInput, GreetingsSource } from './greetings-input.js';
export { shoutTransform } from './shout-transform.js';

// `node --import <this file>`: installs typescript-hooks.mjs in a child process.
import { register } from 'node:module';

register('./typescript-hooks.mjs', import.meta.url);

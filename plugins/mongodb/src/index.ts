export const PACKAGE_NAME = '@codefeedr/plugin-mongodb';
// Components in the alphabetical order of their export names: the order an ESM namespace (and
// so the derived manifest) lists them in, and the one vitest's transformed module keeps.
export {
  mongoInput,
  MongoInputSource,
  mongoInputConfigSchema,
  MONGODB_OPERATION_HEADER,
  type MongoInputConfig,
  type MongoInputOptions,
} from './mongo-input.js';
export {
  MongoKeyManager,
  mongoKeyManager,
  mongoKeyManagerConfigSchema,
  keyIdFor,
  type MongoKeyManagerConfig,
  type MongoKeyManagerOptions,
} from './key-manager.js';
export {
  mongoOutput,
  MongoOutputSink,
  mongoOutputConfigSchema,
  type MongoOutputConfig,
  type MongoOutputOptions,
} from './mongo-output.js';
export {
  mongoConnectionConfigSchema,
  openMongo,
  parseMongoUrl,
  type MongoConnection,
  type MongoConnectionConfig,
} from './connection.js';
export * from './errors.js';

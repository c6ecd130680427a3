export const PACKAGE_NAME = '@codefeedr/plugin-postgres';
// Components in alphabetical order of their exports: the manifest lists them in that order either way.
export {
  postgresInput,
  PostgresInputSource,
  postgresInputConfigSchema,
  type PostgresInputConfig,
  type PostgresInputPosition,
} from './postgres-input.js';
export {
  postgresOutput,
  postgresOutputFor,
  PostgresOutputSink,
  postgresOutputConfigSchema,
  type PostgresOutputConfig,
  type PostgresOutputContext,
} from './postgres-output.js';
export {
  postgresConnectionSchema,
  postgresPoolConfig,
  openPostgresPool,
  type PostgresConnectionConfig,
  type PostgresEndpoint,
} from './connection.js';
export {
  planLayout,
  columnsFromJsonSchema,
  sqlTypeOfJsonSchema,
  TableLayout,
  type ColumnMapping,
  type LayoutPlan,
  type OutputMode,
  type TableColumn,
  type ValueSource,
} from './table-layout.js';
export { PositionsTable, positionCovers } from './positions-table.js';
export * from './errors.js';

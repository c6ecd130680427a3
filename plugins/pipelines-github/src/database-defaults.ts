// Where the database outputs connect when neither the config nor the environment says:
// the servers' own default ports on this machine. Not exported from the package.
export const DEFAULT_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const DEFAULT_MONGODB_URL = 'mongodb://127.0.0.1:27017/';

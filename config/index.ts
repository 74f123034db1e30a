/**
 * config/ — reading the files operators write (agent config, sidecar config, policy): YAML or JSON, checked by a
 * JSON Schema compiled once by ajv, defaults from the schema, errors naming each field with file:line:column,
 * results frozen; and locating the files shipped with the package. May import spiffe/ (for the error base class) only.
 */
export { ConfigError, compileSchema, readConfigFile, parseConfigText, validateConfig, schemaProblems, durationSeconds, DURATION_SCHEMA } from './load'
export type { ConfigProblem, SchemaProblem, ConfigSource, Locate } from './load'
export { packageFile, packageVersion } from './package-files'

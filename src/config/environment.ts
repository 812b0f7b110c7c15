/**
 * Reading one environment variable, for settings that name a variable rather than hold a
 * value (a rule file's `signing.secrets: ["env:NAME"]`). Kept here because `src/config/` is
 * the only reader of `process.env`.
 */

/** Looks up an environment variable by name; undefined when it is not set. */
export type EnvironmentLookup = (name: string) => string | undefined;

/** The process's environment, read at the moment of the call. */
export const processEnvironment: EnvironmentLookup = (name) => process.env[name];

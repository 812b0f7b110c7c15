/**
 * The version of Relaybus, as in package.json. Kept as a constant (not read from
 * package.json at run time) because the file sits at different depths in src/ and dist/;
 * a test checks the two agree.
 */
export const RELAYBUS_VERSION = "0.1.0";

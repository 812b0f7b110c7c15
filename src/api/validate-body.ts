/** Request-body validation for control-plane routes: ajv, with errors naming the field. */
import { Ajv, type ErrorObject } from "ajv";
import { RelaybusError } from "../errors.js";

const ajv = new Ajv({ allErrors: true, strict: true });

/** Compiles `schema` once; the returned function checks a body and returns it typed, or throws `ValidationError`. */
export function compileBodyValidator<T>(schema: object): (body: unknown) => T {
  const validate = ajv.compile(schema);
  return (body) => {
    if (body === undefined) throw new RelaybusError("ValidationError", "body: a JSON body is required");
    if (validate(body)) return body as T;
    const problems = (validate.errors ?? []).map(describe);
    throw new RelaybusError("ValidationError", problems.join("; "), { details: { problems } });
  };
}

function describe(error: ErrorObject): string {
  const at = `body${error.instancePath.replaceAll("/", ".")}`;
  if (error.keyword === "additionalProperties") {
    return `${at}: unknown field ${JSON.stringify((error.params as { additionalProperty: string }).additionalProperty)}`;
  }
  if (error.keyword === "required") {
    return `${at}.${(error.params as { missingProperty: string }).missingProperty}: required`;
  }
  return `${at}: ${error.message ?? "is invalid"}`;
}

/**
 * JSONata function signatures (`<s-nn?:s>`), validated as jsonata validates them: the same
 * regular expression over one letter per argument, the same context substitution for `-`, the
 * same wrapping of a single value where an array is expected. A built-in's behaviour on odd
 * arguments (a number where a string goes, a missing argument) comes from here, so it must be
 * jsonata's to the letter.
 */
import { isFunction, JsonataCodeError } from "./transform-values.js";

interface SignatureParam {
  regex: string;
  type: string;
  array?: boolean;
  context?: boolean;
  contextRegex?: RegExp;
  subtype?: string;
}

/** A parsed signature: `validate` returns the arguments the implementation receives. */
export interface Signature {
  validate(args: readonly unknown[], context: unknown): unknown[];
}

/** One letter for the type of a value, as jsonata's `getSymbol`. */
function symbolOf(value: unknown): string {
  if (isFunction(value)) return "f";
  switch (typeof value) {
    case "string":
      return "s";
    case "number":
      return "n";
    case "boolean":
      return "b";
    case "object":
      if (value === null) return "l";
      return Array.isArray(value) ? "a" : "o";
    default:
      return "m";
  }
}

function findClosingBracket(text: string, start: number, open: string, close: string): number {
  let depth = 1;
  let position = start;
  while (position < text.length) {
    position++;
    const symbol = text.charAt(position);
    if (symbol === close) {
      depth--;
      if (depth === 0) break;
    } else if (symbol === open) {
      depth++;
    }
  }
  return position;
}

/** Parses a signature of jsonata's built-in table (trusted text, never user input). */
export function parseSignature(signature: string): Signature {
  const params: SignatureParam[] = [];
  let param: SignatureParam = { regex: "", type: "" };
  let previous = param;
  const next = () => {
    params.push(param);
    previous = param;
    param = { regex: "", type: "" };
  };
  for (let position = 1; position < signature.length; position++) {
    const symbol = signature.charAt(position);
    if (symbol === ":") break;
    switch (symbol) {
      case "s":
      case "n":
      case "b":
      case "l":
      case "o":
        param.regex = `[${symbol}m]`;
        param.type = symbol;
        next();
        break;
      case "a":
        param.regex = "[asnblfom]";
        param.type = symbol;
        param.array = true;
        next();
        break;
      case "f":
        param.regex = "f";
        param.type = symbol;
        next();
        break;
      case "j":
        param.regex = "[asnblom]";
        param.type = symbol;
        next();
        break;
      case "x":
        param.regex = "[asnblfom]";
        param.type = symbol;
        next();
        break;
      case "-":
        previous.context = true;
        previous.contextRegex = new RegExp(previous.regex);
        previous.regex += "?";
        break;
      case "?":
      case "+":
        previous.regex += symbol;
        break;
      case "(": {
        const end = findClosingBracket(signature, position, "(", ")");
        const choice = signature.substring(position + 1, end);
        param.regex = `[${choice}m]`;
        param.type = `(${choice})`;
        position = end;
        next();
        break;
      }
      case "<": {
        const end = findClosingBracket(signature, position, "<", ">");
        previous.subtype = signature.substring(position + 1, end);
        position = end;
        break;
      }
    }
  }
  const regex = new RegExp(`^${params.map((p) => `(${p.regex})`).join("")}$`);

  // The regex's answer depends only on the argument letters: kept per letter string.
  const plans = new Map<string, ArgumentPlan | null>();
  const planFor = (supplied: string): ArgumentPlan | null => {
    let plan = plans.get(supplied);
    if (plan !== undefined) return plan;
    const matched = regex.exec(supplied);
    if (matched === null) {
      plan = null;
    } else {
      const groups = params.map((_p, index) => matched[index + 1] ?? "");
      // One argument per parameter, no arrays to wrap, no context: the arguments as they are.
      const passThrough = params.every(
        (p, index) => (groups[index] as string).length === 1 && p.type !== "a",
      );
      plan = { groups, passThrough };
    }
    if (plans.size < 64) plans.set(supplied, plan);
    return plan;
  };

  return {
    validate(args, context) {
      let supplied = "";
      for (let i = 0; i < args.length; i++) supplied += symbolOf(args[i]);
      const plan = planFor(supplied);
      if (plan === null) throw new JsonataCodeError("T0410");
      if (plan.passThrough) return args as unknown[];
      const validated: unknown[] = [];
      let argIndex = 0;
      params.forEach((p, index) => {
        const match = plan.groups[index] as string;
        if (match === "") {
          if (p.context === true && p.contextRegex !== undefined) {
            if (!p.contextRegex.test(symbolOf(context))) {
              throw new JsonataCodeError("T0411", context);
            }
            validated.push(context);
          } else {
            validated.push(args[argIndex]);
            argIndex++;
          }
          return;
        }
        for (const single of match) {
          let arg = args[argIndex];
          if (p.type === "a") {
            if (single === "m") {
              arg = undefined;
            } else {
              if (!arrayMatchesSubtype(p.subtype, single, match, arg)) {
                throw new JsonataCodeError("T0412", arg);
              }
              if (single !== "a") arg = [arg];
            }
          }
          validated.push(arg);
          argIndex++;
        }
      });
      return validated;
    },
  };
}

/** What the signature's regular expression made of one string of argument letters. */
interface ArgumentPlan {
  /** The letters each parameter took ("" when it took none). */
  readonly groups: readonly string[];
  readonly passThrough: boolean;
}

/** jsonata checks only the first item's type and that all items share it. */
function arrayMatchesSubtype(
  subtype: string | undefined,
  single: string,
  match: string,
  arg: unknown,
): boolean {
  if (subtype === undefined) return true;
  if (single !== "a") return match === subtype;
  const items = arg as unknown[];
  if (items.length === 0) return true;
  const itemType = symbolOf(items[0]);
  if (itemType !== subtype.charAt(0)) return false;
  return items.every((item) => symbolOf(item) === itemType);
}

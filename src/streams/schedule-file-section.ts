/**
 * The `schedules:` sections of rule files: each entry checked against the schedule schema and
 * its expression and time zone parsed (connectors/schedule), names unique across files. A
 * problem refuses the whole load, so the running schedules stay; an accepted load hands the
 * set to the bus scheduler, which restarts only the schedules that changed.
 */
import { Ajv, type ValidateFunction } from "ajv";
import { parseScheduleExpression } from "../../connectors/schedule/index.js";
import type { FileSection, FileSectionOwner } from "../rules/load-rule-files.js";
import type { RuleProblem } from "../rules/rule-problem.js";
import { describeAjvErrors } from "../rules/validate-rule.js";
import { SCHEDULE_DEFINITION_SCHEMA, SCHEDULE_DEFINITION_SCHEMA_ID, type BusSchedule } from "./schedule-model.js";

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, verbose: true });
ajv.addSchema(SCHEDULE_DEFINITION_SCHEMA);
const validate = ajv.getSchema(SCHEDULE_DEFINITION_SCHEMA_ID) as ValidateFunction;

/** A schedule of a rule file, with where it is written. */
export interface FileSchedule {
  schedule: BusSchedule;
  file: string;
  line: number;
}

/** The owner of `schedules:`; `current()` is the schedules of the last accepted load. */
export function createScheduleFileSection(options: { onApply?(schedules: readonly FileSchedule[]): void } = {}): FileSectionOwner & {
  current(): readonly FileSchedule[];
} {
  let current: readonly FileSchedule[] = [];
  return {
    key: "schedules",
    current: () => current,
    check(sections: readonly FileSection[]) {
      const problems: RuleProblem[] = [];
      const found: FileSchedule[] = [];
      const definedAt = new Map<string, string>();
      for (const section of sections) {
        (section.value as unknown[]).forEach((entry, index) => {
          const at = (pointer: string, message: string): RuleProblem => ({
            file: section.file,
            line: section.lineOf(`/${index}${pointer}`),
            pointer: `/schedules/${index}${pointer}`,
            message,
          });
          if (!validate(entry)) {
            problems.push(...describeAjvErrors(validate.errors ?? []).map((p) => at(p.pointer, p.message)));
            return;
          }
          const schedule = entry as BusSchedule;
          try {
            parseScheduleExpression(schedule.expression, schedule.timezone);
          } catch (error) {
            const message = (error as Error).message;
            problems.push(at(/time ?zone/i.test(message) ? "/timezone" : "/expression", message));
            return;
          }
          const line = section.lineOf(`/${index}`);
          const first = definedAt.get(schedule.name);
          if (first !== undefined) {
            problems.push(at("/name", `schedule ${JSON.stringify(schedule.name)} is already defined at ${first}; schedule names are unique`));
            return;
          }
          definedAt.set(schedule.name, `${section.file}:${line}`);
          found.push({ schedule, file: section.file, line });
        });
      }
      return {
        problems,
        apply() {
          current = found;
          options.onApply?.(found);
        },
      };
    },
  };
}

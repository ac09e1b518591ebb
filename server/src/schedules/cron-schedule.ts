import { CronExpressionParser } from "cron-parser";

/** Why a cron expression or a time zone was refused; the message is safe for a Connect error. */
export class CronSyntaxError extends Error {}

/** Longest cron expression accepted. */
export const cronMaxLength = 256;

/**
 * A cron expression read in an IANA time zone: the times ("ticks") it names. Parsing and
 * date arithmetic are cron-parser's (with Luxon's time zone rules); this class fixes the
 * accepted syntax and the direction of each question. `seed` makes `H` fields stable: every
 * replica computes the same ticks for the same schedule.
 *
 * Daylight saving time, as cron-parser does it: a wall-clock time that a spring-forward
 * skips runs an hour later (02:30 becomes 03:30), a time that a fall-back repeats runs once
 * (at its first occurrence), and every-N-minutes expressions keep their pace in absolute
 * time through both.
 */
export class CronSchedule {
  private constructor(
    /** The expression as given. */
    readonly expression: string,
    /** The canonical IANA name of the zone. */
    readonly timeZone: string,
    private readonly seed: string,
  ) {}

  /**
   * Parses `expression` (5 fields, 6 with leading seconds, or an `@` macro) in `timeZone`;
   * throws {@link CronSyntaxError} when either is not valid, or when the expression names no
   * time at all (such as 30 February).
   */
  static parse(expression: string, timeZone: string, seed: string): CronSchedule {
    const zone = canonicalTimeZone(timeZone);
    const trimmed = expression.trim();
    if (trimmed === "") throw new CronSyntaxError("is required");
    if (expression.length > cronMaxLength) throw new CronSyntaxError(`must be at most ${cronMaxLength} characters`);
    const fields = trimmed.split(/\s+/).length;
    // cron-parser fills in missing fields ("* *" would mean every minute): insist on a full one.
    if (!trimmed.startsWith("@") && fields !== 5 && fields !== 6) {
      throw new CronSyntaxError(`must have 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first but has ${fields}`);
    }
    const schedule = new CronSchedule(expression, zone, seed);
    try {
      schedule.#parse(new Date()).next();
    } catch (error) {
      throw new CronSyntaxError(`is not a valid cron expression (${safeText((error as Error).message)})`);
    }
    return schedule;
  }

  /** The first tick strictly after `after`. */
  nextAfter(after: Date): Date {
    return this.#parse(after).next().toDate();
  }

  /** The latest tick at or before `atOrBefore`. */
  latestAtOrBefore(atOrBefore: Date): Date {
    // prev() is strictly before its start: start one millisecond later to include `atOrBefore`.
    return this.#parse(new Date(atOrBefore.getTime() + 1)).prev().toDate();
  }

  #parse(currentDate: Date) {
    return CronExpressionParser.parse(this.expression.trim(), { currentDate, tz: this.timeZone, hashSeed: this.seed });
  }
}

const timeZoneProblem = "must be an IANA time zone name such as UTC or a region and city joined by a slash";

/**
 * The canonical IANA name of `timeZone` ("US/Pacific" → "America/Los_Angeles", "Etc/UTC" →
 * "UTC"); throws {@link CronSyntaxError} for names the runtime's time zone database does not
 * know and for bare UTC offsets, which are not zones (they have no daylight saving rules).
 */
export function canonicalTimeZone(timeZone: string): string {
  if (timeZone === "" || /^[+-]/.test(timeZone) || timeZone.length > 64) {
    throw new CronSyntaxError(timeZoneProblem);
  }
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone }).resolvedOptions().timeZone;
  } catch {
    throw new CronSyntaxError(timeZoneProblem);
  }
}

/**
 * Connect error messages must avoid `: , ; / ? @ & = + $ #` (see `invalidArgument`): the
 * library's reason is kept readable with those replaced.
 */
function safeText(text: string): string {
  return text.replace(/[:,;/?@&=+$#]/g, " ").replace(/\s+/g, " ").trim();
}

import fc from "fast-check";
import { CronSchedule } from "@jobwire/server";
import { hostileString } from "./values.js";

/**
 * Values for the fields of ScheduleService requests: cron expressions, time zones, names.
 *
 * A schedule created by a valid request enqueues a job at each of its ticks, on a timer,
 * and a tick during the run would change the database on its own while the fuzzer compares
 * fingerprints. So every cron expression the fuzzer may send either is refused or has no
 * tick in the next {@link minimumLeadMs}, whatever the time zone and whatever `H` picks:
 * no schedule the fuzzer creates or resumes ever ticks during a run.
 */

const dayMs = 86_400_000;

/**
 * How far away the first tick of a valid expression must be, in UTC: the largest zone
 * offset (±14 h) and the longest run stay well inside it.
 */
const minimumLeadMs = 3 * dayMs;

const monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const dayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/** A calendar day (UTC) `days` after `now`, as the day of its month and its month (1..12). */
function dayAfter(now: number, days: number): { day: number; month: number } {
  const date = new Date(now + days * dayMs);
  return { day: date.getUTCDate(), month: date.getUTCMonth() + 1 };
}

/** The month (1..12) `months` after the current one (UTC): all of it at least a month away when `months >= 2`. */
function monthAfter(now: number, months: number): number {
  return ((new Date(now).getUTCMonth() + months) % 12) + 1;
}

/** Seeds the server may give `H` (it uses the schedule's id): a valid expression must be far for each. */
const hashSeeds = ["00000000-0000-7000-8000-000000000000", "0190f5c0-8b1e-7c3a-9d2e-5f6a7b8c9d0e", "ffffffff-ffff-7fff-bfff-ffffffffffff"];

/**
 * Whether `expression` may be sent: the server refuses it, or its first tick (for every
 * seed of `H`) is more than {@link minimumLeadMs} after now.
 */
export function refusedOrFarCron(expression: string): boolean {
  const earliest = Date.now() + minimumLeadMs;
  try {
    return hashSeeds.every((seed) => CronSchedule.parse(expression, "UTC", seed).nextAfter(new Date()).getTime() > earliest);
  } catch {
    return true;
  }
}

/**
 * Valid expressions in every syntax the server documents (5 and 6 fields, names, ranges,
 * lists, steps, `L`, `#`, `H`, macros), on days or in months at least a month away.
 */
function farCronArbitrary(now: number): fc.Arbitrary<string> {
  const farDay = fc.integer({ min: 10, max: 330 }).map((days) => dayAfter(now, days));
  const farMonth = fc.integer({ min: 2, max: 10 }).map((months) => monthAfter(now, months));
  const minute = fc.integer({ min: 0, max: 59 });
  const hour = fc.integer({ min: 0, max: 23 });
  const monthText = (month: number, byName: boolean) => (byName ? monthNames[month - 1]! : String(month));
  return fc.oneof(
    fc.tuple(minute, hour, farDay, fc.boolean()).map(([m, h, { day, month }, byName]) => `${m} ${h} ${day} ${monthText(month, byName)} *`),
    fc.tuple(minute, minute, hour, farDay).map(([s, m, h, { day, month }]) => `${s} ${m} ${h} ${day} ${month} *`),
    fc.tuple(farDay, fc.constantFrom("H H", "H(0-29) H(9-17)", "H/15 H", "0 H", "H 0-6/2")).map(([{ day, month }, clock]) => `${clock} ${day} ${month} *`),
    fc.tuple(farDay, fc.constantFrom("*/30 9-17", "0,15,30,45 8", "0 */6", "5-10 12")).map(([{ day, month }, clock]) => `${clock} ${day} ${month} ?`),
    fc.tuple(minute, hour, farMonth, fc.boolean()).map(([m, h, month, byName]) => `${m} ${h} L ${monthText(month, byName)} *`),
    fc.tuple(hour, farMonth, fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 5 }), fc.boolean()).map(
      ([h, month, weekday, nth, byName]) => `0 ${h} * ${month} ${byName ? dayNames[weekday] : weekday}#${nth}`,
    ),
    fc.tuple(farMonth, fc.constantFrom("5L", "0L", "FRI", "MON-FRI", "1,3,5", "7")).map(([month, weekdays]) => `0 9 * ${month} ${weekdays}`),
    fc.tuple(farMonth, fc.constantFrom("1-7", "*/10", "1,15", "H", "28-31")).map(([month, days]) => `30 7 ${days} ${month} *`),
    fc.tuple(farMonth, farMonth).map(([a, b]) => (a < b ? `0 0 1 ${a}-${b} *` : `0 0 1 ${a},${b} *`)),
    fc.constantFrom("@yearly", "@annually", "0 0 29 2 *", "0 12 29 FEB *", "  0 0 29 2 *  "),
  );
}

/** Expressions around the valid ones: out of range, impossible dates, wrong field counts, unknown syntax. */
const cronNoise = fc.constantFrom(
  "",
  " ",
  "* * * *",
  "* * * * * * *",
  "60 * * * *",
  "* 24 * * *",
  "0 0 0 1 *",
  "0 0 32 1 *",
  "0 0 1 13 *",
  "0 0 * * 8",
  "0 0 30 2 *",
  "0 0 31 4 *",
  "0 0 31 2,4,6,9,11 *",
  "*/0 * * * *",
  "5-1 * * * *",
  "0 0 * * 1#6",
  "0 0 * * 1#0",
  "0 0 LW * *",
  "0 0 15W * *",
  "0 0 L-3 * *",
  "H(5-1) * * * *",
  "H(0-99) * * * *",
  "0 H(1-5)/10 * * *",
  "@every 5m",
  "@reboot",
  "@midnight",
  "@fortnightly",
  "0 0 1 JANUARY *",
  "0 0 1 1 MONDAY",
  "0 0 1 1 * 2027",
  "0\t0\t29\t2\t*",
  "0 0 29 2 *\u0000",
  "0 0 29 2 *\n* * * * *",
  "0 0 29 2 * ; DROP TABLE schedule",
  "0 0 1,,2 1 *",
  "0 0 1-31/0 1 *",
  "9999999999999999999 * * * *",
  "-1 * * * *",
  "1e3 * * * *",
  "0x10 * * * *",
  "0 0 29 2 *" + " ".repeat(247),
  "0 0 29 2 *" + " ".repeat(248),
);

/** Tokens that replace one field of a valid expression. */
const fieldNoise = fc.constantFrom("60", "-1", "*/0", "32", "13", "8", "L-1", "1#6", "0#1", "H(5-1)", "W", "LW", "JANX", "MON-", "1-", "/", "**", "1,,2", "\u0000", "é", "' OR 1=1", "");

/** Valid expressions only, each with its ticks far away (through {@link refusedOrFarCron} too). */
export function farCronHint(now = Date.now()): fc.Arbitrary<string> {
  return farCronArbitrary(now).filter(refusedOrFarCron);
}

/**
 * Cron expressions for `ScheduleSpec.cron`: valid ones whose ticks are far away, invalid
 * ones of every kind, and valid ones with one field broken; filtered through
 * {@link refusedOrFarCron}, so that no expression that could tick during the run is sent.
 */
export function cronHint(now = Date.now()): fc.Arbitrary<string> {
  const far = farCronArbitrary(now);
  const broken = fc.tuple(far, fc.nat(), fieldNoise, fc.constantFrom("replace", "drop", "add")).map(([expression, at, token, how]) => {
    const fields = expression.trim().split(/\s+/);
    const index = at % fields.length;
    if (how === "drop") fields.splice(index, 1);
    else if (how === "add") fields.splice(index, 0, token);
    else fields[index] = token;
    return fields.join(" ");
  });
  return fc
    .oneof({ weight: 6, arbitrary: far }, { weight: 2, arbitrary: cronNoise }, { weight: 2, arbitrary: broken }, { weight: 1, arbitrary: hostileString })
    .filter(refusedOrFarCron);
}

/**
 * IANA zones, including aliases, odd offsets (+5:45, +14, half-hour daylight saving) and
 * spellings the runtime canonicalises; and names no zone database knows: offsets, typos,
 * paths, NUL, past the 64-character limit.
 */
export const timeZoneHint = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "",
      "UTC",
      "Etc/UTC",
      "GMT",
      "Europe/Berlin",
      "europe/berlin",
      "America/Los_Angeles",
      "US/Pacific",
      "Asia/Kathmandu",
      "Pacific/Kiritimati",
      "Pacific/Pago_Pago",
      "Australia/Lord_Howe",
      "America/St_Johns",
      "Etc/GMT+12",
      "Etc/GMT-14",
      "EST5EDT",
      "CET",
      "America/Argentina/ComodRivadavia",
      "America/" + "A".repeat(56),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "Mars/Olympus",
      "Factory",
      "+02:00",
      "-05:00",
      "UTC+2",
      "GMT+2",
      "Z",
      "local",
      "localtime",
      "Europe/Berlin\u0000",
      " Europe/Berlin",
      "Europe/",
      "/",
      "../../etc/passwd",
      "Europe/Berlin' OR '1'='1",
      "America/" + "A".repeat(57),
    ),
  },
);

/**
 * Schedule names: mostly those of the world's schedules, so that reads find them and a
 * CreateSchedule either meets ALREADY_EXISTS or makes one again after a DeleteSchedule;
 * fresh valid names, and names at the 128-character limit.
 */
export function scheduleNameHint(known: readonly string[]): fc.Arbitrary<string> {
  const fresh = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}$/);
  return fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: fresh }, { weight: 1, arbitrary: fc.constantFrom("s".repeat(128), "s".repeat(129)) });
}

/**
 * Expressions for the world's own schedules, built like the hint's far ones: each names
 * days at least a month away from `now`.
 */
export function farCronExamples(now = Date.now()): string[] {
  const { day, month } = dayAfter(now, 60);
  const later = monthAfter(now, 3);
  return [`0 6 ${day} ${month} *`, `H H ${day} ${monthNames[month - 1]} *`, `0 0 L ${later} *`, `0 12 * ${later} MON#2`];
}

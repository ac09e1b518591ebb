import { create } from "@bufbuild/protobuf";
import { DurationSchema, timestampFromDate, type Duration, type Timestamp } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "./connect-errors.js";

/** The range of `google.protobuf.Timestamp`: 0001-01-01 to 9999-12-31. */
const minTimestampSeconds = -62_135_596_800n;
const maxTimestampSeconds = 253_402_300_799n;

/**
 * Reads a Duration as whole milliseconds, refusing negative, malformed (nanos out of range
 * or of the wrong sign) and out-of-bounds values with `INVALID_ARGUMENT` naming `field`.
 */
export function millisFromDuration(duration: Duration, field: string, minMs: number, maxMs: number): number {
  const { seconds, nanos } = duration;
  if (nanos <= -1e9 || nanos >= 1e9 || (seconds > 0n && nanos < 0) || (seconds < 0n && nanos > 0)) {
    throw invalidArgument(field, "is not a valid duration");
  }
  if (seconds < 0n || nanos < 0) throw invalidArgument(field, "must not be negative");
  if (seconds > BigInt(Math.ceil(maxMs / 1000))) throw invalidArgument(field, `must be at most ${maxMs} ms`);
  const ms = Number(seconds) * 1000 + Math.floor(nanos / 1e6);
  if (ms < minMs || ms > maxMs) throw invalidArgument(field, `must be between ${minMs} ms and ${maxMs} ms`);
  return ms;
}

/**
 * Reads a Timestamp as a Date, refusing values outside the Timestamp range. Nanoseconds are
 * cut to whole milliseconds, not rounded: rounding (as `timestampDate` does) turns
 * 9999-12-31T23:59:59.9995Z into year 10000, which no Timestamp can carry back out.
 */
export function dateFromTimestamp(timestamp: Timestamp, field: string): Date {
  const { seconds, nanos } = timestamp;
  if (seconds < minTimestampSeconds || seconds > maxTimestampSeconds || nanos < 0 || nanos >= 1e9) {
    throw invalidArgument(field, "is not a valid timestamp");
  }
  return new Date(Number(seconds) * 1000 + Math.floor(nanos / 1e6));
}

/**
 * A Timestamp as RFC 3339 text with microseconds, Postgres's own precision, for filters
 * that must not round (a JS Date keeps milliseconds only).
 */
export function rfc3339FromTimestamp(timestamp: Timestamp, field: string): string {
  const date = dateFromTimestamp(timestamp, field);
  const wholeSecond = new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString().slice(0, 19);
  return `${wholeSecond}.${String(Math.floor(timestamp.nanos / 1000)).padStart(6, "0")}Z`;
}

/** A Duration of `ms` milliseconds. */
export function durationFromMillis(ms: number): Duration {
  return create(DurationSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 });
}

/** A Timestamp from a Date, or undefined for null. */
export function timestampFromNullableDate(date: Date | null | undefined): Timestamp | undefined {
  return date ? timestampFromDate(date) : undefined;
}

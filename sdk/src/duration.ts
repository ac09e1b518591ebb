import { create } from "@bufbuild/protobuf";
import { DurationSchema, type Duration } from "@bufbuild/protobuf/wkt";

/** A `google.protobuf.Duration` of `ms` milliseconds (negative values are kept negative). */
export function durationFromMillis(ms: number): Duration {
  const whole = Math.trunc(ms);
  return create(DurationSchema, { seconds: BigInt(Math.trunc(whole / 1000)), nanos: (whole % 1000) * 1_000_000 });
}

/** Milliseconds of a Duration; 0 when unset. */
export function millisFromDuration(duration: Duration | undefined): number {
  return duration ? Number(duration.seconds) * 1000 + Math.floor(duration.nanos / 1_000_000) : 0;
}

import fc from "fast-check";

/**
 * Hostile and boundary values of each wire type, independent of any RPC. The message
 * generator (`message-arbitrary.ts`) mixes them with the valid-looking values of
 * `field-hints.ts`.
 */

/** Strings that look like SQL, LIKE patterns, JSON paths or shell, for every text field. */
export const sqlLooking = [
  "' OR '1'='1",
  "'; DROP TABLE job; --",
  "\"; DELETE FROM job_event; --",
  "x' UNION SELECT secret FROM webhook_subscription --",
  "%",
  "_",
  "%' OR 1=1 --",
  "\\",
  "\\x00",
  "$1",
  "$$; SELECT pg_sleep(10); $$",
  "0; SELECT pg_sleep(10)",
  "job_state::text",
  "{\"a\":1}",
  "->>'payload'",
  "@>",
  "?|",
  "E'\\\\'",
  "`rm -rf /`",
  "$(id)",
  "../../etc/passwd",
  "null",
  "NULL",
  "undefined",
  "__proto__",
  "constructor",
  "toString",
];

/** Text that is hard for encoders: NUL, lone surrogates, controls, RTL marks, astral characters. */
export const awkwardText = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "\udfff",
  "a\ud800b",
  "\ud83d\ude00",
  "\u202eevil",
  "\ufeffbom",
  "\r\n",
  "line\nbreak",
  "tab\there",
  "é",
  "ß",
  "İ",
  "\u0085",
  "\u2028",
  "🧨".repeat(50),
  "Q".repeat(128),
  "Q".repeat(129),
  "x".repeat(1024),
  "x".repeat(1025),
  "x".repeat(4097),
];

/** Any string at all, weighted towards the awkward and the SQL-looking. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...sqlLooking, ...awkwardText) },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme-composite", maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  // Sizes past the string limits (names 128, texts 1024 to 4096, URLs 2048).
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom("a", "é", "\u0000", "🧨", "'"), fc.constantFrom(129, 257, 2049, 5000, 70_000)).map(([unit, n]) => unit.repeat(n)) },
);

/** int32 values around every limit the server has and around the type's own range. */
export const hostileInt32: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0, 1, -1, 2, 50, 99, 100, 101, 999, 1000, 1001, -1000, -1001, 9999, 10_000, 10_001, 2 ** 31 - 1, -(2 ** 31), 2 ** 30) },
  { weight: 1, arbitrary: fc.integer() },
);

/** int64 values: zero, negatives and the type's extremes. */
export const hostileInt64: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0n, 1n, -1n, 2n ** 31n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) },
);

/** uint32/uint64 as numbers the descriptors may ask for; none of the request messages use them today. */
export const hostileUint32: fc.Arbitrary<number> = fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 31);
/** uint64 values. */
export const hostileUint64: fc.Arbitrary<bigint> = fc.constantFrom(0n, 1n, 2n ** 64n - 1n, 2n ** 63n);

/** Doubles, including the ones JSON cannot carry. */
export const hostileDouble: fc.Arbitrary<number> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(0, -0, 0.5, 1, 1.5, 2, 10, 10.000001, 11, -1, NaN, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE, 1e308, -1e308, 2 ** 53 + 1) },
  { weight: 1, arbitrary: fc.double() },
);

/** An enum number: a known value, zero (UNSPECIFIED), or one no enum declares. */
export function hostileEnum(known: number[]): fc.Arbitrary<number> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...known) },
    { weight: 1, arbitrary: fc.constantFrom(0, -1, 99, 1000, 2 ** 31 - 1, -(2 ** 31)) },
  );
}

/** `google.protobuf.Duration` fields: negatives, mixed signs, nanos out of range, huge seconds. */
export const hostileDuration = fc.record({
  seconds: fc.oneof(
    fc.constantFrom(0n, 1n, -1n, 59n, 86_400n, 86_401n, 7n * 86_400n + 1n, 365n * 86_400n + 1n, 315_576_000_000n, 315_576_000_001n, 2n ** 63n - 1n, -(2n ** 63n)),
    fc.bigInt({ min: -(2n ** 40n), max: 2n ** 40n }),
  ),
  nanos: fc.constantFrom(0, 1, -1, 500_000_000, 999_999_999, 1_000_000_000, -999_999_999, -1_000_000_000, 2 ** 31 - 1, -(2 ** 31)),
});

/** `google.protobuf.Timestamp` fields: around year 1 and year 9999, the epoch, and past the range. */
export const hostileTimestamp = fc.record({
  seconds: fc.oneof(
    fc.constantFrom(0n, -1n, -62_135_596_800n, -62_135_596_801n, 253_402_300_799n, 253_402_300_800n, 2n ** 63n - 1n, -(2n ** 63n), 1_000_000_000n),
    fc.bigInt({ min: -62_135_596_800n, max: 253_402_300_799n }),
  ),
  nanos: fc.constantFrom(0, 1, 999_999_999, 1_000_000_000, -1, 2 ** 31 - 1, -(2 ** 31)),
});

/** The init shape of a `google.protobuf.Value`. */
export type ValueInit =
  | { kind: { case: "nullValue"; value: 0 } }
  | { kind: { case: "numberValue"; value: number } }
  | { kind: { case: "stringValue"; value: string } }
  | { kind: { case: "boolValue"; value: boolean } }
  | { kind: { case: "structValue"; value: { fields: Record<string, ValueInit> } } }
  | { kind: { case: "listValue"; value: { values: ValueInit[] } } }
  | { kind?: undefined };

/** A list nested `depth` levels deep around a null: the JSON depth limit is 64. */
export function nestedList(depth: number): ValueInit {
  let value: ValueInit = { kind: { case: "nullValue", value: 0 } };
  for (let level = 0; level < depth; level++) value = { kind: { case: "listValue", value: { values: [value] } } };
  return value;
}

/** An object nested `depth` levels deep, each level under the key `k`. */
export function nestedStruct(depth: number): ValueInit {
  let value: ValueInit = { kind: { case: "boolValue", value: true } };
  for (let level = 0; level < depth; level++) value = { kind: { case: "structValue", value: { fields: { k: value } } } };
  return value;
}

const { value: shallowValue } = fc.letrec<{ value: ValueInit }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant<ValueInit>({ kind: { case: "nullValue", value: 0 } }),
    hostileDouble.map<ValueInit>((value) => ({ kind: { case: "numberValue", value } })),
    hostileString.map<ValueInit>((value) => ({ kind: { case: "stringValue", value } })),
    fc.boolean().map<ValueInit>((value) => ({ kind: { case: "boolValue", value } })),
    fc.constant<ValueInit>({}),
    fc.dictionary(hostileString, tie("value"), { maxKeys: 4 }).map<ValueInit>((fields) => ({ kind: { case: "structValue", value: { fields } } })),
    fc.array(tie("value"), { maxLength: 4 }).map<ValueInit>((values) => ({ kind: { case: "listValue", value: { values } } })),
  ),
}));

/**
 * A `google.protobuf.Value`: shallow documents of hostile scalars (NaN, NUL, lone
 * surrogates, SQL), documents nested around the depth limit and far past it, and
 * payloads around the 1 MiB and 64 KiB size limits.
 */
export const hostileValue: fc.Arbitrary<ValueInit> = fc.oneof(
  { weight: 6, arbitrary: shallowValue },
  // Built by map, not held as constants: fast-check would walk constants this deep.
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(63, 64, 65, 100, 299, 300, 1000, 5000), fc.boolean()).map(([depth, list]) => (list ? nestedList(depth) : nestedStruct(depth))) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(64 * 1024 - 2, 64 * 1024 + 1, 1024 * 1024 - 2, 1024 * 1024 - 1, 2 * 1024 * 1024)
      .map<ValueInit>((n) => ({ kind: { case: "stringValue", value: "x".repeat(n) } })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(1_000, 100_000).map<ValueInit>((n) => ({
      kind: { case: "structValue", value: { fields: Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, { kind: { case: "numberValue", value: i } }])) } },
    })),
  },
);

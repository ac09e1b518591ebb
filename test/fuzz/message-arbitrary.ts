import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import fc from "fast-check";
import type { FieldHint, FieldHints } from "./field-hints.js";
import {
  hostileDouble,
  hostileDuration,
  hostileEnum,
  hostileInt32,
  hostileInt64,
  hostileString,
  hostileTimestamp,
  hostileUint32,
  hostileUint64,
  hostileValue,
} from "./values.js";

/** Where the generator looks for valid-looking values; see `field-hints.ts`. */
export interface HintSource {
  /** By field name, for every RPC. */
  shared: FieldHints;
  /** By field path (`job.queue`), for this RPC only; these win. */
  rpc: FieldHints;
}

/** Message nesting the generator follows before it leaves a message field unset. */
const maxMessageDepth = 4;

/**
 * An arbitrary of init objects for `create(schema, init)`, built from the message's
 * descriptor alone, so that every request message of every RPC gets one without code of
 * its own. Each field is left unset or filled with a valid-looking value (its hint) or a
 * hostile one of its type; lists and maps are usually short and sometimes far past the
 * server's entry limits; `google.protobuf.Value`, `Duration` and `Timestamp` get their own
 * hostile values.
 */
export function messageArbitrary(schema: DescMessage, hints: HintSource, path = "", depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const member of schema.members) {
    if (member.kind === "oneof") {
      const cases = member.fields.map((field) =>
        singleValue(field, hints, join(path, field.name), depth).map((value) => ({ case: field.localName, value })),
      );
      parts[member.localName] = fc.oneof(fc.constant({ case: undefined }), ...cases);
    } else {
      parts[member.localName] = fieldValue(member, hints, join(path, member.name), depth);
    }
  }
  return fc.record(parts, { requiredKeys: [] });
}

function join(path: string, name: string): string {
  return path === "" ? name : `${path}.${name}`;
}

/** The hint for a field: by path for this RPC, else by name. */
function hintFor(field: DescField, hints: HintSource, path: string): FieldHint | undefined {
  return hints.rpc[path] ?? hints.shared[field.name];
}

/** Mixes a field's hint (mostly) with hostile values of its type (sometimes). */
function withHint<T>(hint: FieldHint | undefined, hostile: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  if (hint === undefined) return hostile;
  if ("only" in hint) return hint.only;
  return fc.oneof({ weight: 3, arbitrary: hint }, { weight: 1, arbitrary: hostile });
}

function fieldValue(field: DescField, hints: HintSource, path: string, depth: number): fc.Arbitrary<unknown> {
  switch (field.fieldKind) {
    case "list": {
      const element = elementValue(field, hints, path, depth);
      return listOf(element);
    }
    case "map": {
      const hint = hintFor(field, hints, path);
      const key = scalarValue(field.mapKey);
      const value =
        field.mapKind === "message"
          ? messageOrWellKnown(field.message, hints, path, depth)
          : field.mapKind === "enum"
            ? hostileEnum(field.enum.values.map((v) => v.number))
            : scalarValue(field.scalar);
      const hostile = fc.oneof(
        { weight: 4, arbitrary: fc.dictionary(key as fc.Arbitrary<string>, value, { maxKeys: 4 }) },
        // Past the 64-entry limits, with cheap entries.
        { weight: 1, arbitrary: fc.constantFrom(65, 1_000, 20_000).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, "v"]))) },
      );
      return withHint(hint, hostile);
    }
    default:
      return singleValue(field, hints, path, depth);
  }
}

/** What a long list may add up to, roughly: past the 32 MiB request limit, not far past. */
const longListBudgetBytes = 40 * 1024 * 1024;

/**
 * A list: usually short; sometimes one element repeated past the server's entry limits.
 * A repeated element that would take the list past {@link longListBudgetBytes} is replaced
 * by an empty one: ten thousand copies of a 2 MiB payload would only exhaust the fuzzer.
 */
function listOf(element: fc.Arbitrary<unknown>): fc.Arbitrary<unknown[]> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.array(element, { maxLength: 4 }) },
    {
      weight: 1,
      arbitrary: fc.tuple(element, fc.constantFrom(65, 101, 1_001, 10_001)).map(([value, n]) => {
        const each = Math.floor(longListBudgetBytes / n);
        const fits = approximateBytes(value, each) <= each;
        const repeated = fits ? value : typeof value === "string" ? value.slice(0, each / 3) : typeof value === "object" ? {} : value;
        return Array.from({ length: n }, () => repeated);
      }),
    },
  );
}

/** Roughly how many bytes `value` encodes to; stops counting past `limit`. Iterative: values nest thousands deep. */
export function approximateBytes(value: unknown, limit: number): number {
  let total = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0 && total <= limit) {
    const item = pending.pop();
    if (typeof item === "string") total += item.length * 3 + 2;
    else if (item instanceof Uint8Array) total += item.length + 2;
    else if (Array.isArray(item)) pending.push(...item);
    else if (item !== null && typeof item === "object") {
      for (const [key, inner] of Object.entries(item)) {
        total += key.length + 2;
        pending.push(inner);
      }
    } else total += 10;
  }
  return total;
}

function elementValue(field: DescField & { fieldKind: "list" }, hints: HintSource, path: string, depth: number): fc.Arbitrary<unknown> {
  const hint = hintFor(field, hints, path);
  switch (field.listKind) {
    case "message":
      return messageOrWellKnown(field.message, hints, path, depth);
    case "enum":
      return withHint(hint, hostileEnum(field.enum.values.map((v) => v.number)));
    default:
      return withHint(hint, scalarValue(field.scalar));
  }
}

function singleValue(field: DescField, hints: HintSource, path: string, depth: number): fc.Arbitrary<unknown> {
  const hint = hintFor(field, hints, path);
  switch (field.fieldKind) {
    case "message":
      if (hint && "only" in hint) return hint.only;
      return fc.option(messageOrWellKnown(field.message, hints, path, depth), { nil: undefined, freq: 3 });
    case "enum":
      return withHint(hint, hostileEnum(field.enum.values.map((v) => v.number)));
    case "scalar":
      return withHint(hint, scalarValue(field.scalar));
    default:
      throw new Error(`unexpected field kind at ${path}`);
  }
}

function messageOrWellKnown(schema: DescMessage, hints: HintSource, path: string, depth: number): fc.Arbitrary<unknown> {
  switch (schema.typeName) {
    case "google.protobuf.Value":
      return hostileValue;
    case "google.protobuf.Duration":
      return hostileDuration;
    case "google.protobuf.Timestamp":
      return hostileTimestamp;
    default:
      if (depth >= maxMessageDepth) return fc.constant({});
      return messageArbitrary(schema, hints, path, depth + 1);
  }
}

/** Hostile values of a scalar type. */
export function scalarValue(type: ScalarType): fc.Arbitrary<unknown> {
  switch (type) {
    case ScalarType.STRING:
      return hostileString;
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return hostileDouble;
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return hostileInt32;
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return hostileUint32;
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return hostileInt64;
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return hostileUint64;
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 64 });
  }
}

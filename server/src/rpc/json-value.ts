import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "./connect-errors.js";

/** How deeply JSON values may nest; deeper documents are refused, not stored. */
const maxJsonDepth = 64;

/**
 * Turns a `google.protobuf.Value` from a request into JSON text for a `jsonb` column,
 * refusing, with `INVALID_ARGUMENT` naming `field`, what JSON or Postgres cannot hold:
 * NaN and infinities, NUL characters, lone surrogates, nesting deeper than 64, and more
 * than `maxBytes` bytes of JSON. An unset value is JSON `null`.
 */
export function jsonTextFromValue(value: Value | undefined, field: string, maxBytes: number): string {
  if (value === undefined) return "null";
  let json: JsonValue;
  try {
    json = toJson(ValueSchema, value);
  } catch {
    throw invalidArgument(field, "must be valid JSON (numbers must be finite)");
  }
  checkStorableJson(json, field, 0);
  const text = JSON.stringify(json);
  if (Buffer.byteLength(text) > maxBytes) throw invalidArgument(field, `must be at most ${maxBytes} bytes as JSON`);
  return text;
}

/** Turns stored JSON back into a `google.protobuf.Value`; undefined for SQL NULL. */
export function valueFromJson(json: unknown): Value | undefined {
  if (json === null || json === undefined) return undefined;
  return fromJson(ValueSchema, json as JsonValue);
}

function checkStorableJson(json: JsonValue, field: string, depth: number): void {
  if (depth > maxJsonDepth) throw invalidArgument(field, `must not nest deeper than ${maxJsonDepth} levels`);
  if (typeof json === "string") {
    checkStorableString(json, field);
  } else if (Array.isArray(json)) {
    for (const item of json) checkStorableJson(item, field, depth + 1);
  } else if (json !== null && typeof json === "object") {
    for (const [key, item] of Object.entries(json)) {
      checkStorableString(key, field);
      checkStorableJson(item as JsonValue, field, depth + 1);
    }
  }
}

/** Postgres text and jsonb cannot hold NUL, and JSON cannot carry lone surrogates. */
export function checkStorableString(text: string, field: string): void {
  if (text.includes("\u0000")) throw invalidArgument(field, "must not contain NUL characters");
  if (!text.isWellFormed()) throw invalidArgument(field, "must be well-formed Unicode");
}

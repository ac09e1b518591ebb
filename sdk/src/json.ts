import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";

/** Any JSON value: what payloads, results and progress are. */
export type { JsonValue };

/** Encodes a JSON value (or undefined, meaning unset) as a `google.protobuf.Value`. */
export function valueFromJson(json: JsonValue | undefined): Value | undefined {
  return json === undefined ? undefined : fromJson(ValueSchema, json);
}

/** Decodes a `google.protobuf.Value`; an unset value is `null`. */
export function jsonFromValue(value: Value | undefined): JsonValue {
  return value === undefined ? null : toJson(ValueSchema, value);
}

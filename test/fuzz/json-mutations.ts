import fc from "fast-check";

/**
 * Mutations of a request's proto3 JSON, for the raw Connect-JSON channel: wrong JSON types
 * anywhere, numbers JSON parsers disagree on, invalid UTF-8 and lone surrogates inside
 * strings, documents nested far deeper than any limit, unknown and duplicate keys, and
 * bodies that are not a JSON object at all. A mutation picks its target node by index
 * (modulo the nodes there are), so it applies to whatever request it meets.
 */
export type JsonMutation =
  | { kind: "none" }
  | { kind: "replace"; node: number; raw: Buffer }
  | { kind: "addKey"; node: number; key: string; raw: Buffer }
  | { kind: "duplicateKey"; node: number; raw: Buffer }
  | { kind: "body"; body: Buffer }
  | { kind: "truncate"; fraction: number };

/** Text spliced into a document as it is, bytes and all. */
class Raw {
  constructor(readonly bytes: Buffer) {}
}

const b = (text: string) => Buffer.from(text, "utf8");
const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((part) => (typeof part === "string" ? b(part) : Buffer.from(part))));

function deepArray(depth: number): Buffer {
  return b("[".repeat(depth) + "]".repeat(depth));
}
function deepObject(depth: number): Buffer {
  return b('{"a":'.repeat(depth) + "1" + "}".repeat(depth));
}

/** Raw JSON values to put where any value stands. */
const rawValues: Buffer[] = [
  b('"text"'),
  b('""'),
  b("0"),
  b("-1"),
  b("1.5"),
  b("-0"),
  b("1e400"),
  b("-1e400"),
  b("1e-400"),
  b("12345678901234567890123"),
  b("9007199254740993"),
  b("2147483648"),
  b("-2147483649"),
  b("9223372036854775808"),
  b("18446744073709551616"),
  b('"9223372036854775808"'),
  b('"NaN"'),
  b('"Infinity"'),
  b('"-Infinity"'),
  b('"0x10"'),
  b('" 5"'),
  b('"1e3"'),
  b("true"),
  b("false"),
  b("null"),
  b("[]"),
  b("{}"),
  b("[1,\"a\",null]"),
  b('{"a":1}'),
  b('"\\ud800"'),
  b('"\\udfff\\ud800"'),
  b('"\\u0000"'),
  b('"\\u0000\' OR 1=1 --"'),
  b('"JOB_STATE_BOGUS"'),
  b('"EVENT_TYPE_SUCCEEDED"'),
  b('"1s"'),
  b('"-1s"'),
  b('"315576000001s"'),
  b('"1.0000000001s"'),
  b('"9999-12-31T23:59:59Z"'),
  b('"0000-01-01T00:00:00Z"'),
  b('"2024-02-30T00:00:00Z"'),
  b('"2024-01-01T00:00:00+99:00"'),
  bytes('"', [0xff, 0xfe], '"'),
  bytes('"', [0xc0, 0x80], '"'),
  bytes('"', [0xed, 0xa0, 0x80], '"'),
  bytes('"', [0xe2, 0x82], '"'),
  bytes('"a', [0x80], 'b"'),
  deepArray(64),
  deepArray(65),
  deepArray(1_000),
  deepArray(100_000),
  deepObject(1_000),
  deepObject(20_000),
];

const unknownKeys = ["unknownField", "__proto__", "constructor", "prototype", "@type", "", "job_id", "page_size", "pageSize", "PAGESIZE", "\u0000", "\ud800"];

/** Bodies that replace the whole request. */
const rawBodies: Buffer[] = [
  b(""),
  b("null"),
  b("[]"),
  b('"x"'),
  b("0"),
  b("{"),
  b("{}}"),
  b("{} {}"),
  b('{"a":1,}'),
  b("{'a':1}"),
  b("\ufeff{}"),
  bytes([0xef, 0xbb, 0xbf], "{}"),
  bytes([0xff, 0xfe], "{\u0000}"),
  bytes([0x00, 0x00, 0x00, 0x00]),
  deepArray(200_000),
  deepObject(50_000),
  b('{"job":' + '{"payload":'.repeat(5_000) + "1" + "}".repeat(5_001)),
];

/** Mutations of a request's JSON. */
export const jsonMutation: fc.Arbitrary<JsonMutation> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<JsonMutation>({ kind: "none" }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("replace" as const), node: fc.nat(), raw: fc.constantFrom(...rawValues) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("addKey" as const), node: fc.nat(), key: fc.constantFrom(...unknownKeys), raw: fc.constantFrom(...rawValues) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("duplicateKey" as const), node: fc.nat(), raw: fc.constantFrom(...rawValues) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("body" as const), body: fc.oneof(fc.constantFrom(...rawBodies), fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a))) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
);

type Tree = null | boolean | number | string | Raw | Tree[] | { [key: string]: Tree } | DupObject;

/** An object written with one key twice. */
class DupObject {
  constructor(
    readonly entries: [string, Tree][],
  ) {}
}

/** Applies `mutation` to the JSON form of a request and returns the body to send. */
export function mutateJson(json: unknown, mutation: JsonMutation): Buffer {
  switch (mutation.kind) {
    case "none":
      return serialize(json as Tree);
    case "body":
      return mutation.body;
    case "truncate": {
      const full = serialize(json as Tree);
      return full.subarray(0, Math.floor(full.length * mutation.fraction));
    }
    case "replace": {
      const nodes = allNodes(json as Tree);
      const target = nodes[mutation.node % nodes.length]!;
      return serialize(replaceAt(json as Tree, target, new Raw(mutation.raw)));
    }
    case "addKey":
    case "duplicateKey": {
      const objects = allNodes(json as Tree).filter((node) => isObject(node.value));
      if (objects.length === 0) return serialize(json as Tree);
      const target = objects[mutation.node % objects.length]!;
      const object = target.value as Record<string, Tree>;
      const keys = Object.keys(object);
      const key = mutation.kind === "addKey" ? mutation.key : (keys[mutation.node % Math.max(keys.length, 1)] ?? "job");
      const entries: [string, Tree][] = [...Object.entries(object), [key, new Raw(mutation.raw)]];
      return serialize(replaceAt(json as Tree, target, new DupObject(entries)));
    }
  }
}

interface NodeRef {
  path: (string | number)[];
  value: Tree;
}

function isObject(value: Tree): value is { [key: string]: Tree } {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Raw) && !(value instanceof DupObject);
}

function allNodes(root: Tree): NodeRef[] {
  const found: NodeRef[] = [];
  const walk = (value: Tree, path: (string | number)[]) => {
    found.push({ path, value });
    if (Array.isArray(value)) value.forEach((item, index) => walk(item, [...path, index]));
    else if (isObject(value)) for (const [key, item] of Object.entries(value)) walk(item, [...path, key]);
  };
  walk(root, []);
  return found;
}

function replaceAt(root: Tree, target: NodeRef, replacement: Tree): Tree {
  const rebuild = (value: Tree, depth: number): Tree => {
    if (depth === target.path.length) return replacement;
    const step = target.path[depth]!;
    if (Array.isArray(value)) return value.map((item, index) => (index === step ? rebuild(item, depth + 1) : item));
    if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, key === step ? rebuild(item, depth + 1) : item]));
    return value;
  };
  return rebuild(root, 0);
}

function serialize(value: Tree): Buffer {
  const parts: Buffer[] = [];
  const write = (node: Tree) => {
    if (node instanceof Raw) parts.push(node.bytes);
    else if (node instanceof DupObject) {
      parts.push(b("{"));
      node.entries.forEach(([key, item], index) => {
        if (index > 0) parts.push(b(","));
        parts.push(b(`${JSON.stringify(key)}:`));
        write(item);
      });
      parts.push(b("}"));
    } else if (Array.isArray(node)) {
      parts.push(b("["));
      node.forEach((item, index) => {
        if (index > 0) parts.push(b(","));
        write(item);
      });
      parts.push(b("]"));
    } else if (isObject(node)) {
      parts.push(b("{"));
      Object.entries(node).forEach(([key, item], index) => {
        if (index > 0) parts.push(b(","));
        parts.push(b(`${JSON.stringify(key)}:`));
        write(item);
      });
      parts.push(b("}"));
    } else {
      parts.push(b(JSON.stringify(node) ?? "null"));
    }
  };
  write(value);
  return Buffer.concat(parts);
}

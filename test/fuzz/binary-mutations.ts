import { ScalarType, type DescMessage } from "@bufbuild/protobuf";
import fc from "fast-check";

/**
 * Mutations of a request's protobuf bytes and of the gRPC frame around them, for the raw
 * gRPC channel: truncation, flipped bytes, invalid UTF-8 in string fields, wrong wire
 * types, unknown fields and groups nested deep, lengths that point past the end, and
 * frames whose flags or length prefix lie. Targets are picked by index modulo what the
 * message has, so a mutation applies to any request.
 */
export interface BinaryMutation {
  message: MessageMutation;
  frame: FrameMutation;
  /** `grpc-encoding` and `grpc-timeout` request headers to send, if any. */
  headers: Record<string, string>;
}

type MessageMutation =
  | { kind: "none" }
  | { kind: "truncate"; fraction: number }
  | { kind: "flip"; at: number; xor: number }
  | { kind: "append"; bytes: Buffer }
  | { kind: "badString"; field: number; bytes: Buffer }
  | { kind: "wrongWireType"; field: number; wireType: number };

type FrameMutation =
  | { kind: "normal" }
  | { kind: "flags"; flags: number }
  | { kind: "lengthDelta"; delta: number }
  | { kind: "length"; length: number }
  | { kind: "empty" }
  | { kind: "twoFrames" }
  | { kind: "partialPrefix"; bytes: number };

function varint(value: bigint): Buffer {
  const out: number[] = [];
  let v = value;
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Buffer.from(out);
}

function tag(field: number, wireType: number): Buffer {
  return varint((BigInt(field) << 3n) | BigInt(wireType));
}

const invalidUtf8 = [Buffer.from([0xff]), Buffer.from([0xc0, 0x80]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xe2, 0x82]), Buffer.from([0x61, 0x80, 0x62]), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80])];

/** Bytes appended to a message: unknown fields, broken groups, lying lengths, overlong varints. */
const appended: Buffer[] = [
  Buffer.concat([tag(1000, 0), varint(1n)]),
  Buffer.concat([tag(1000, 2), varint(3n), Buffer.from("abc")]),
  Buffer.concat([tag(536_870_911, 0), varint(0n)]),
  Buffer.concat([tag(0, 0), varint(0n)]),
  tag(9, 3),
  tag(9, 4),
  Buffer.concat(Array.from({ length: 10_000 }, () => tag(9, 3))),
  Buffer.concat([...Array.from({ length: 5_000 }, () => tag(9, 3)), ...Array.from({ length: 5_000 }, () => tag(9, 4))]),
  Buffer.concat([tag(1, 6), varint(0n)]),
  Buffer.concat([tag(1, 7), varint(0n)]),
  Buffer.concat([tag(1, 2), varint(0xffff_ffffn)]),
  Buffer.concat([tag(1, 2), varint(2n ** 63n)]),
  Buffer.concat([tag(2, 0), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])]),
  Buffer.concat([tag(2, 0), Buffer.from([0xff, 0xff, 0xff])]),
  Buffer.concat([tag(1, 1), Buffer.from([1, 2, 3])]),
  Buffer.concat([tag(1, 5), Buffer.from([1])]),
  Buffer.from([0x80]),
];

const messageMutation: fc.Arbitrary<MessageMutation> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<MessageMutation>({ kind: "none" }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("append" as const), bytes: fc.oneof(fc.constantFrom(...appended), fc.uint8Array({ maxLength: 32 }).map((a) => Buffer.from(a))) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("badString" as const), field: fc.nat(), bytes: fc.constantFrom(...invalidUtf8) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("wrongWireType" as const), field: fc.nat(), wireType: fc.integer({ min: 0, max: 7 }) }) },
);

const frameMutation: fc.Arbitrary<FrameMutation> = fc.oneof(
  { weight: 12, arbitrary: fc.constant<FrameMutation>({ kind: "normal" }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("flags" as const), flags: fc.constantFrom(0x01, 0x02, 0x80, 0xff) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("lengthDelta" as const), delta: fc.constantFrom(-5, -1, 1, 100) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("length" as const), length: fc.constantFrom(0, 0x7fff_ffff, 0xffff_ffff, 33 * 1024 * 1024) }) },
  { weight: 1, arbitrary: fc.constant<FrameMutation>({ kind: "empty" }) },
  { weight: 1, arbitrary: fc.constant<FrameMutation>({ kind: "twoFrames" }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("partialPrefix" as const), bytes: fc.integer({ min: 1, max: 4 }) }) },
);

const headerMutation: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { weight: 10, arbitrary: fc.constant({}) },
  { weight: 1, arbitrary: fc.constantFrom({ "grpc-encoding": "gzip" }, { "grpc-encoding": "br" }, { "grpc-encoding": "identity" }, { "grpc-encoding": "" }, { "grpc-encoding": "gzip, deflate" }) },
  { weight: 1, arbitrary: fc.constantFrom({ "grpc-timeout": "1n" }, { "grpc-timeout": "99999999H" }, { "grpc-timeout": "abc" }, { "grpc-timeout": "-1S" }, { "grpc-timeout": "123456789012S" }) },
);

/** Mutations of a request's bytes, frame and headers. */
export const binaryMutation: fc.Arbitrary<BinaryMutation> = fc.record({ message: messageMutation, frame: frameMutation, headers: headerMutation });

/** Applies the message part of `mutation` to `bytes`, a `schema` message. */
export function mutateMessage(bytes: Uint8Array, schema: DescMessage, mutation: BinaryMutation): Buffer {
  const message = Buffer.from(bytes);
  const m = mutation.message;
  switch (m.kind) {
    case "none":
      return message;
    case "truncate":
      return message.subarray(0, Math.floor(message.length * m.fraction));
    case "flip": {
      if (message.length === 0) return message;
      const copy = Buffer.from(message);
      const at = m.at % copy.length;
      copy[at] = copy[at]! ^ m.xor;
      return copy;
    }
    case "append":
      return Buffer.concat([message, m.bytes]);
    case "badString": {
      const strings = schema.fields.filter((f) => (f.fieldKind === "scalar" || (f.fieldKind === "list" && f.listKind === "scalar")) && f.scalar === ScalarType.STRING);
      const mapStrings = schema.fields.filter((f) => f.fieldKind === "map");
      const field = [...strings, ...mapStrings][m.field % Math.max(strings.length + mapStrings.length, 1)];
      if (!field) return message;
      const value = field.fieldKind === "map"
        // A map entry whose key (field 1) is invalid UTF-8.
        ? Buffer.concat([tag(1, 2), varint(BigInt(m.bytes.length)), m.bytes])
        : m.bytes;
      return Buffer.concat([message, tag(field.number, 2), varint(BigInt(value.length)), value]);
    }
    case "wrongWireType": {
      const field = schema.fields[m.field % Math.max(schema.fields.length, 1)];
      if (!field) return message;
      const payload = m.wireType === 2 ? Buffer.from([3, 1, 2, 3]) : m.wireType === 1 ? Buffer.alloc(8, 0xff) : m.wireType === 5 ? Buffer.alloc(4, 0xff) : Buffer.from([0x96, 0x01]);
      return Buffer.concat([message, tag(field.number, m.wireType), payload]);
    }
  }
}

/** Wraps `message` in gRPC length-prefixed frames, as the frame part of `mutation` says. */
export function frameMessage(message: Buffer, mutation: BinaryMutation): Buffer {
  const frame = (flags: number, length: number, body: Buffer) => {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt8(flags, 0);
    prefix.writeUInt32BE(length >>> 0, 1);
    return Buffer.concat([prefix, body]);
  };
  const f = mutation.frame;
  switch (f.kind) {
    case "normal":
      return frame(0, message.length, message);
    case "flags":
      return frame(f.flags, message.length, message);
    case "lengthDelta":
      return frame(0, Math.max(0, message.length + f.delta), message);
    case "length":
      return frame(0, f.length, message);
    case "empty":
      return Buffer.alloc(0);
    case "twoFrames":
      return Buffer.concat([frame(0, message.length, message), frame(0, message.length, message)]);
    case "partialPrefix":
      return frame(0, message.length, message).subarray(0, f.bytes);
  }
}

/**
 * The safetensors format (an 8-byte little-endian header length, a JSON header of dtype,
 * shape and byte offsets per tensor, then the raw little-endian data); small enough that a
 * writer is a few lines, and read back by the tests.
 */
export function encodeSafetensors(tensors: Record<string, { shape: number[]; data: Float32Array }>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  // The header is padded with spaces to 8 bytes so the data that follows stays aligned.
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const head = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let o = 8 + head.length;
  for (const t of Object.values(tensors)) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), o);
    o += t.data.byteLength;
  }
  return out;
}

export function decodeSafetensors(bytes: Uint8Array): { metadata: Record<string, string>; tensors: Record<string, { shape: number[]; data: Float32Array }> } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [a, b] = t.data_offsets;
    // A copy: Node's Buffers may be views into a shared pool, and F32 needs 4-byte alignment.
    const copy = new Uint8Array(b - a);
    copy.set(bytes.subarray(8 + n + a, 8 + n + b));
    tensors[name] = { shape: t.shape, data: new Float32Array(copy.buffer) };
  }
  return { metadata: (header.__metadata__ ?? {}) as unknown as Record<string, string>, tensors };
}

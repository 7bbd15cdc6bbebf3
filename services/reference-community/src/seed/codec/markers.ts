/** A JPEG / JPEG-LS marker segment: the marker, its length (including the two length bytes), its body. */
export function markerSegment(marker: number, body: number[]): Buffer {
  const b = Buffer.alloc(4 + body.length);
  b.writeUInt16BE(marker, 0);
  b.writeUInt16BE(2 + body.length, 2);
  Buffer.from(body).copy(b, 4);
  return b;
}

/**
 * Lossless encoders for the compressed instances of the seed. Only lossless transfer syntaxes exist
 * here: an image is given out byte-exact and decodes to exactly the samples it was made from (JSRT
 * KAKUTEI guideline; DICOM PS3.5 A.4: these transfer syntaxes are lossless by definition).
 */
import { TS_JPEG_LOSSLESS_SV1, TS_JPEG_LS_LOSSLESS } from '../dicom';
import { encodeJpegLossless } from './jpeg-lossless';
import { encodeJpegLs } from './jpeg-ls';

/** One frame of unsigned grey-scale samples (16 bits allocated, little endian) in `transferSyntaxUid`. */
export function encodeFrame(
  transferSyntaxUid: string,
  pixelData: Buffer,
  rows: number,
  columns: number,
  bitsStored: number,
): Buffer {
  const samples = new Uint16Array(rows * columns);
  for (let i = 0; i < samples.length; i++) samples[i] = pixelData.readUInt16LE(2 * i);
  switch (transferSyntaxUid) {
    case TS_JPEG_LOSSLESS_SV1:
      return encodeJpegLossless(samples, rows, columns, bitsStored);
    case TS_JPEG_LS_LOSSLESS:
      return encodeJpegLs(samples, rows, columns, bitsStored);
    default:
      throw new Error(`no lossless encoder for transfer syntax ${transferSyntaxUid}`);
  }
}

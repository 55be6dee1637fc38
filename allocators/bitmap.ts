import { endianness } from 'node:os';
import { deflateRawSync, inflateRawSync, constants as zlibConstants } from 'node:zlib';

/**
 * Version of the serialized bitmap layout. Bumped whenever the byte layout changes, so a
 * replica never misreads a ConfigMap written by a newer or older build.
 */
export const BITMAP_FORMAT_VERSION = 1;

/** How the bit payload of a serialized bitmap is stored after its header. */
const PAYLOAD_RAW = 0;
const PAYLOAD_DEFLATE = 1;

/** version (1) + payload encoding (1) + size in bits (4) + count of set bits (4). */
const HEADER_BYTES = 10;

/** Word memory already has the serialized byte order on little-endian hosts, so it is copied as is. */
const LITTLE_ENDIAN = endianness() === 'LE';

/** The largest bitmap we accept: a /12 or /108 has 2^20 entries, with room to spare. */
export const MAX_BITMAP_SIZE = 1 << 24;

/** Error thrown when serialized bitmap bytes are malformed; the message says which check failed. */
export class BitmapFormatError extends Error {
  /** @param message what is wrong with the input */
  constructor(message: string) {
    super(message);
    this.name = 'BitmapFormatError';
  }
}

function popcount32(word: number): number {
  let v = word - ((word >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/** Index of the lowest set bit of a non-zero 32-bit word. */
function lowestSetBit(word: number): number {
  return 31 - Math.clz32(word & -word);
}

/**
 * A fixed-size set of small integers [0, size), stored as 32-bit words so scans for a free
 * entry skip 32 taken entries per step: a /12 service range has about a million entries and a
 * bit-by-bit scan would cost milliseconds per allocation once it fills up.
 */
export class Bitmap {
  /** Number of entries; valid indexes are 0 … size − 1. */
  readonly size: number;
  readonly #words: Uint32Array;
  #count = 0;

  /**
   * @param size number of entries, 0 … {@link MAX_BITMAP_SIZE}
   * @param words initial content, copied; bits at or beyond `size` must be clear
   */
  constructor(size: number, words?: Uint32Array) {
    if (!Number.isSafeInteger(size) || size < 0 || size > MAX_BITMAP_SIZE) {
      throw new RangeError(`bitmap size must be an integer between 0 and ${MAX_BITMAP_SIZE}, got ${size}`);
    }
    this.size = size;
    this.#words = new Uint32Array(Math.ceil(size / 32));
    if (words !== undefined) {
      if (words.length !== this.#words.length) {
        throw new RangeError(`bitmap of size ${size} needs ${this.#words.length} words, got ${words.length}`);
      }
      if (size % 32 !== 0 && (words[words.length - 1]! & ~maskBits(0, size % 32)) !== 0) {
        throw new RangeError(`bitmap of size ${size} has entries set at or beyond its size`);
      }
      this.#words.set(words);
      let count = 0;
      for (let i = 0; i < this.#words.length; i++) count += popcount32(this.#words[i]!);
      this.#count = count;
    }
  }

  /** Number of set entries, kept up to date on every change so reading it is O(1). */
  get count(): number {
    return this.#count;
  }

  /** Number of clear entries. */
  get free(): number {
    return this.size - this.#count;
  }

  #checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new RangeError(`bitmap index ${index} is outside [0, ${this.size})`);
    }
  }

  /** Whether `index` is set. */
  test(index: number): boolean {
    this.#checkIndex(index);
    return (this.#words[index >>> 5]! & (1 << (index & 31))) !== 0;
  }

  /** Sets `index`; returns false if it was already set (nothing changes then). */
  set(index: number): boolean {
    this.#checkIndex(index);
    const bit = 1 << (index & 31);
    const word = this.#words[index >>> 5]!;
    if ((word & bit) !== 0) return false;
    this.#words[index >>> 5] = word | bit;
    this.#count++;
    return true;
  }

  /** Clears `index`; returns false if it was already clear. */
  clear(index: number): boolean {
    this.#checkIndex(index);
    const bit = 1 << (index & 31);
    const word = this.#words[index >>> 5]!;
    if ((word & bit) === 0) return false;
    this.#words[index >>> 5] = word & ~bit;
    this.#count--;
    return true;
  }

  /** Number of set entries in [lo, hi). */
  countRange(lo: number, hi: number): number {
    this.#checkBand(lo, hi);
    let total = 0;
    for (let index = lo; index < hi; ) {
      const wordIndex = index >>> 5;
      const startBit = index & 31;
      const endBit = Math.min(32, startBit + (hi - index));
      const mask = maskBits(startBit, endBit);
      total += popcount32(this.#words[wordIndex]! & mask);
      index += endBit - startBit;
    }
    return total;
  }

  #checkBand(lo: number, hi: number): void {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi > this.size || lo > hi) {
      throw new RangeError(`bitmap band [${lo}, ${hi}) is not inside [0, ${this.size})`);
    }
  }

  /** First clear index in [from, to) without wrapping, or −1. */
  #firstClear(from: number, to: number): number {
    let index = from;
    while (index < to) {
      const wordIndex = index >>> 5;
      const startBit = index & 31;
      const endBit = Math.min(32, startBit + (to - index));
      const candidates = ~this.#words[wordIndex]! & maskBits(startBit, endBit);
      if (candidates !== 0) return (wordIndex << 5) + lowestSetBit(candidates);
      index += endBit - startBit;
    }
    return -1;
  }

  /**
   * Finds a clear entry scanning forward from `start` within the band [lo, hi), wrapping from
   * hi − 1 back to lo, or returns −1 when the band is full. With the defaults the band is the
   * whole bitmap.
   */
  findFree(start: number, lo = 0, hi = this.size): number {
    this.#checkBand(lo, hi);
    if (lo === hi) return -1;
    if (!Number.isInteger(start) || start < lo || start >= hi) {
      throw new RangeError(`scan start ${start} is outside the band [${lo}, ${hi})`);
    }
    const found = this.#firstClear(start, hi);
    return found !== -1 ? found : this.#firstClear(lo, start);
  }

  /** Indexes of all set entries in ascending order. */
  *setIndexes(): Generator<number> {
    for (let wordIndex = 0; wordIndex < this.#words.length; wordIndex++) {
      let word = this.#words[wordIndex]!;
      while (word !== 0) {
        const bit = lowestSetBit(word);
        yield (wordIndex << 5) + bit;
        word &= word - 1;
      }
    }
  }

  /** An independent copy. */
  clone(): Bitmap {
    const copy = new Bitmap(this.size);
    copy.#words.set(this.#words);
    copy.#count = this.#count;
    return copy;
  }

  /** Whether both bitmaps have the same size and the same entries set. */
  equals(other: Bitmap): boolean {
    if (other.size !== this.size || other.count !== this.count) return false;
    const theirs = other.#words;
    for (let i = 0; i < this.#words.length; i++) {
      if (this.#words[i] !== theirs[i]) return false;
    }
    return true;
  }

  /** Bits packed little-endian within each byte: entry i is bit (i mod 8) of byte ⌊i / 8⌋. */
  #payload(): Uint8Array {
    const length = Math.ceil(this.size / 8);
    if (LITTLE_ENDIAN) return new Uint8Array(this.#words.buffer, 0, length).slice();
    const bytes = new Uint8Array(length);
    for (let wordIndex = 0; wordIndex < this.#words.length; wordIndex++) {
      const word = this.#words[wordIndex]!;
      if (word === 0) continue;
      const at = wordIndex * 4;
      for (let b = 0; b < 4 && at + b < bytes.length; b++) bytes[at + b] = (word >>> (8 * b)) & 0xff;
    }
    return bytes;
  }

  /**
   * Serializes to the versioned layout: a 10-byte header (format version, payload encoding,
   * size, count of set entries) then the bits, deflated when that is smaller. A sparse /12
   * shrinks from 128 KiB to a few hundred bytes, which keeps every compare-and-swap write small.
   */
  toBytes(): Uint8Array {
    const raw = this.#payload();
    // Run-length deflate: long runs of 0x00 or 0xff bytes (empty or full stretches) collapse,
    // and scattered bits cost Huffman coding only. Default deflate is ten times slower here
    // and barely smaller, and this runs on every compare-and-swap write.
    const deflated = deflateRawSync(raw, { strategy: zlibConstants.Z_RLE });
    const useDeflate = deflated.length < raw.length;
    const payload = useDeflate ? deflated : raw;
    const out = new Uint8Array(HEADER_BYTES + payload.length);
    const view = new DataView(out.buffer);
    view.setUint8(0, BITMAP_FORMAT_VERSION);
    view.setUint8(1, useDeflate ? PAYLOAD_DEFLATE : PAYLOAD_RAW);
    view.setUint32(2, this.size);
    view.setUint32(6, this.#count);
    out.set(payload, HEADER_BYTES);
    return out;
  }

  /** {@link toBytes} as base64, the form a ConfigMap's binaryData carries. */
  toBase64(): string {
    return Buffer.from(this.toBytes()).toString('base64');
  }

  /**
   * Parses bytes written by {@link toBytes}. Rejects anything it cannot fully account for:
   * unknown version or encoding, wrong length, bits set beyond the size, or a set-entry count
   * that disagrees with the header. `expectedSize`, when given, must match the stored size.
   */
  static fromBytes(bytes: Uint8Array, expectedSize?: number): Bitmap {
    if (bytes.length < HEADER_BYTES) {
      throw new BitmapFormatError(
        `bitmap data is ${bytes.length} bytes, shorter than its ${HEADER_BYTES}-byte header`,
      );
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const version = view.getUint8(0);
    if (version !== BITMAP_FORMAT_VERSION) {
      throw new BitmapFormatError(
        `bitmap format version ${version} is not supported (supported: ${BITMAP_FORMAT_VERSION})`,
      );
    }
    const encoding = view.getUint8(1);
    const size = view.getUint32(2);
    const declaredCount = view.getUint32(6);
    if (size > MAX_BITMAP_SIZE) {
      throw new BitmapFormatError(`bitmap size ${size} exceeds the maximum ${MAX_BITMAP_SIZE}`);
    }
    if (expectedSize !== undefined && size !== expectedSize) {
      throw new BitmapFormatError(`bitmap size ${size} does not match the range size ${expectedSize}`);
    }
    const payloadLength = Math.ceil(size / 8);
    const stored = bytes.subarray(HEADER_BYTES);
    let raw: Uint8Array;
    if (encoding === PAYLOAD_RAW) {
      raw = stored;
    } else if (encoding === PAYLOAD_DEFLATE) {
      try {
        // The output cap stops a crafted payload from inflating into gigabytes.
        raw = inflateRawSync(stored, { maxOutputLength: Math.max(1, payloadLength) });
      } catch (error) {
        throw new BitmapFormatError(`bitmap payload does not inflate: ${(error as Error).message}`);
      }
    } else {
      throw new BitmapFormatError(
        `bitmap payload encoding ${encoding} is not supported (supported: 0 raw, 1 deflate)`,
      );
    }
    if (raw.length !== payloadLength) {
      throw new BitmapFormatError(
        `bitmap payload is ${raw.length} bytes, a bitmap of size ${size} needs ${payloadLength}`,
      );
    }
    const words = new Uint32Array(Math.ceil(size / 32));
    if (LITTLE_ENDIAN) {
      new Uint8Array(words.buffer).set(raw);
    } else {
      for (let i = 0; i < raw.length; i++) words[i >>> 2]! |= raw[i]! << (8 * (i & 3));
    }
    if (size % 32 !== 0 && (words[words.length - 1]! & ~maskBits(0, size % 32)) !== 0) {
      throw new BitmapFormatError(`bitmap has entries set at or beyond its size ${size}`);
    }
    const bitmap = new Bitmap(size, words);
    if (bitmap.count !== declaredCount) {
      throw new BitmapFormatError(
        `bitmap header declares ${declaredCount} entries set but the payload has ${bitmap.count}`,
      );
    }
    return bitmap;
  }

  /** Parses {@link toBase64} output; rejects text that is not canonical base64. */
  static fromBase64(text: string, expectedSize?: number): Bitmap {
    const bytes = Buffer.from(text, 'base64');
    // Node's decoder skips invalid characters silently; re-encoding catches them.
    if (bytes.toString('base64') !== text) {
      throw new BitmapFormatError('bitmap data is not valid base64');
    }
    return Bitmap.fromBytes(bytes, expectedSize);
  }
}

/** A 32-bit mask with bits [startBit, endBit) set. */
function maskBits(startBit: number, endBit: number): number {
  const upper = endBit === 32 ? 0xffffffff : (1 << endBit) - 1;
  return (upper & ~((1 << startBit) - 1)) | 0;
}

#!/usr/bin/env python3
"""Reference data for the PNGDecoder tests (Tests/PNGDecoderTests).

Commands (exit status 0 on success; 3 when a required Python package is missing):

  check [--skimage]          print versions; fail with status 3 if Pillow (or scikit-image) is missing
  generate OUTDIR            write synthetic PNGs of every colour type / bit depth / tRNS / filter /
                             interlace combination, the expected RGBA8 pixels, and OUTDIR/manifest.tsv
  decode OUTDIR FILE...      decode FILEs with Pillow to RGBA8 and write OUTDIR/manifest.tsv
  skimage-files              print the paths of the PNGs shipped in the installed scikit-image
  seeds OUTDIR               write small PNGs of every colour type / bit depth / interlace (a fuzzing
                             seed corpus; standard library only)
  hostile OUTDIR             write files of at most 1 MiB built to cost time or memory (standard
                             library only): see hostile() below

manifest.tsv lines: name <TAB> png path <TAB> width <TAB> height <TAB> expected .rgba path <TAB> source
where source says how the expected pixels were made ("pillow", "spec+pillow" when computed from the
raw samples and confirmed by Pillow, or "spec" when Pillow is known to differ from the spec).

The expected pixels follow the PNG specification and the decoder's contract: 8-bit RGBA, 16-bit
samples reduced to their high byte (v >> 8), low bit depths scaled by 255 / (2^depth - 1), tRNS
applied as alpha 0 on an exact match of the raw samples, palette indices past PLTE opaque black.
Pillow follows this except for 16-bit gray (it clips to 255 instead of taking the high byte), tRNS on
2/4-bit gray and tRNS on 16-bit RGB (it ignores both); those cases are checked against the
numpy computation alone and marked "spec" in the manifest.
"""
import os
import random
import struct
import sys
import zlib

MISSING = 3


def require(modules):
    try:
        for name in modules:
            __import__(name)
    except ImportError as error:
        print(f"missing Python package: {error.name}", file=sys.stderr)
        sys.exit(MISSING)


# ---------------------------------------------------------------- hand-made PNG writer

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """samples: flat list of ints for one scanline."""
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", v) for v in samples)
    out = bytearray()
    per_byte = 8 // depth
    for i in range(0, len(samples), per_byte):
        byte = 0
        group = samples[i:i + per_byte]
        for j, v in enumerate(group):
            byte |= v << (8 - depth * (j + 1))
        out.append(byte)
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(kind, row, prev, bpp):
    out = bytearray([kind])
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        predictor = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out.append((x - predictor) & 0xFF)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def encode_png(samples, depth, color_type, interlace, choose_filter, compression, split, palette=None, trns=None):
    """samples: nested list [y][x][channel] of raw sample values."""
    height, width, channels = len(samples), len(samples[0]), len(samples[0][0])
    bpp = max(1, channels * depth // 8)
    raw = bytearray()
    row_index = 0
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for (x0, y0, dx, dy) in passes:
        xs = list(range(x0, width, dx))
        ys = list(range(y0, height, dy))
        if not xs or not ys:
            continue
        prev = bytes(len(pack_row([0] * (len(xs) * channels), depth)))
        for y in ys:
            flat = [v for x in xs for v in samples[y][x]]
            row = pack_row(flat, depth)
            raw += filter_row(choose_filter(row_index), row, prev, bpp)
            prev = row
            row_index += 1
    level, strategy = compression
    compressor = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
    stream = compressor.compress(bytes(raw)) + compressor.flush()
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, interlace))
    png += chunk(b"tEXt", b"Comment\x00made by png_reference.py")
    if palette is not None:
        png += chunk(b"PLTE", bytes(v for entry in palette for v in entry))
    if trns is not None:
        png += chunk(b"tRNS", trns)
    pos = 0
    for size in split(len(stream)):
        png += chunk(b"IDAT", stream[pos:pos + size])
        pos += size
    assert pos == len(stream)
    return png + chunk(b"IEND", b"")


# ---------------------------------------------------------------- expected pixels per the spec

def expected_rgba(samples, depth, color_type, palette, trns_key, trns_alpha):
    out = bytearray()
    top = (1 << depth) - 1
    for row in samples:
        for px in row:
            if color_type == 3:
                i = px[0]
                r, g, b = palette[i] if i < len(palette) else (0, 0, 0)
                a = trns_alpha[i] if trns_alpha is not None and i < len(trns_alpha) else 255
                if i >= len(palette):
                    a = 255
                out += bytes((r, g, b, a))
                continue
            transparent = trns_key is not None and tuple(px) == trns_key
            eight = [v >> 8 for v in px] if depth == 16 else [v * 255 // top for v in px]
            if color_type == 0:
                out += bytes((eight[0],) * 3 + (0 if transparent else 255,))
            elif color_type == 2:
                out += bytes(eight + [0 if transparent else 255])
            elif color_type == 4:
                out += bytes((eight[0],) * 3 + (eight[1],))
            else:
                out += bytes(eight)
    return bytes(out)


def pillow_rgba(path):
    import numpy as np
    from PIL import Image
    with Image.open(path) as im:
        im.load()
        if im.mode in ("I;16", "I;16B", "I"):
            gray = (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)
            alpha = np.full(gray.shape, 255, np.uint8)
            return im.size, np.dstack([gray, gray, gray, alpha]).tobytes()
        return im.size, im.convert("RGBA").tobytes()


# ---------------------------------------------------------------- synthetic cases

def make_samples(rng, width, height, channels, depth):
    top = (1 << depth) - 1
    rows = []
    for y in range(height):
        row = []
        for x in range(width):
            px = []
            for c in range(channels):
                if rng.random() < 0.5:
                    v = ((x * 7 + y * 3 + c * 50) * (top // 31 + 1)) % (top + 1)  # runs that compress
                else:
                    v = rng.randint(0, top)
                px.append(v)
            row.append(px)
        rows.append(row)
    return rows


def generate(outdir):
    require(["PIL", "numpy"])
    rng = random.Random(20240601)
    combos = [(0, [1, 2, 4, 8, 16]), (2, [8, 16]), (3, [1, 2, 4, 8]), (4, [8, 16]), (6, [8, 16])]
    channels_of = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
    sizes = [(1, 1), (5, 3), (13, 11), (33, 17)]
    compressions = [(9, zlib.Z_DEFAULT_STRATEGY), (0, zlib.Z_DEFAULT_STRATEGY), (6, zlib.Z_FIXED), (1, zlib.Z_DEFAULT_STRATEGY), (6, zlib.Z_HUFFMAN_ONLY), (9, zlib.Z_RLE)]
    cases = []
    index = 0
    for color_type, depths in combos:
        for depth in depths:
            for with_trns in ([False, True] if color_type in (0, 2, 3) else [False]):
                for interlace in (0, 1):
                    for (w, h) in sizes:
                        cases.append(dict(ct=color_type, depth=depth, trns=with_trns, interlace=interlace, w=w, h=h, index=index))
                        index += 1
    # Larger images: stored blocks over 64 KiB, long matches, many IDAT chunks.
    cases.append(dict(ct=6, depth=8, trns=False, interlace=0, w=300, h=250, index=index, compression=(0, 0)))
    cases.append(dict(ct=2, depth=16, trns=True, interlace=1, w=211, h=157, index=index + 1, compression=(9, 0)))
    cases.append(dict(ct=3, depth=8, trns=True, interlace=0, w=97, h=61, index=index + 2, short_palette=True))

    lines = []
    for case in cases:
        ct, depth, i = case["ct"], case["depth"], case["index"]
        w, h = case["w"], case["h"]
        channels = channels_of[ct]
        palette = trns_alpha = trns_key = trns = None
        if ct == 3:
            entries = 1 << depth
            if case.get("short_palette"):
                entries = 200  # samples use all 256 indices: 200..255 are past the palette
            palette = [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(entries)]
            samples = make_samples(rng, w, h, 1, depth)
            if not case.get("short_palette"):
                samples = [[[v % entries] for [v] in row] for row in samples]
            if case["trns"]:
                trns_alpha = [rng.randrange(256) for _ in range(max(1, entries // 2))]
                trns = bytes(trns_alpha)
        else:
            samples = make_samples(rng, w, h, channels, depth)
            if case["trns"]:
                trns_key = tuple(samples[h // 2][w // 2])
                for _ in range(max(1, w * h // 5)):  # make the key colour common
                    samples[rng.randrange(h)][rng.randrange(w)] = list(trns_key)
                if ct == 2 and w * h > 1:  # near misses: two channels match, one does not
                    samples[0][0] = [trns_key[0], trns_key[1], (trns_key[2] + 1) % (1 << depth)]
                trns = b"".join(struct.pack(">H", v) for v in trns_key)

        mode = i % 7
        filter_rng = random.Random(i)
        choose = (lambda r, m=mode: m) if mode < 5 else ((lambda r: r % 5) if mode == 5 else (lambda r, fr=filter_rng: fr.randrange(5)))
        compression = case.get("compression", compressions[i % len(compressions)])
        if i % 3 == 2:
            def split(n, sr=random.Random(i)):
                sizes, left = [], n
                while left > 0:
                    s = min(left, sr.choice([1, 2, 7, 64, 1000]))
                    sizes.append(s)
                    left -= s
                return sizes
        else:
            def split(n):
                return [n]
        png = encode_png(samples, depth, ct, case["interlace"], choose, compression, split, palette, trns)
        name = f"ct{ct}_d{depth}{'_trns' if case['trns'] else ''}{'_adam7' if case['interlace'] else ''}_{w}x{h}_f{mode}_z{compression[0]}s{compression[1]}_{i}"
        png_path = os.path.join(outdir, name + ".png")
        with open(png_path, "wb") as f:
            f.write(png)
        expected = expected_rgba(samples, depth, ct, palette, trns_key, trns_alpha)
        rgba_path = os.path.join(outdir, name + ".rgba")
        with open(rgba_path, "wb") as f:
            f.write(expected)

        pillow_differs = (ct == 0 and depth == 16) or (ct == 0 and depth in (2, 4) and case["trns"]) or (ct == 2 and depth == 16 and case["trns"])
        source = "spec"
        if not pillow_differs:
            size, pixels = pillow_rgba(png_path)
            if size != (w, h) or pixels != expected:
                print(f"Pillow disagrees with the expected pixels of {name}", file=sys.stderr)
                sys.exit(1)
            source = "spec+pillow"
        lines.append("\t".join([name, png_path, str(w), str(h), rgba_path, source]))
    with open(os.path.join(outdir, "manifest.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")


def decode(outdir, files):
    require(["PIL", "numpy"])
    lines = []
    for n, path in enumerate(files):
        size, pixels = pillow_rgba(path)
        rgba_path = os.path.join(outdir, f"{n}_{os.path.basename(path)}.rgba")
        with open(rgba_path, "wb") as f:
            f.write(pixels)
        lines.append("\t".join([os.path.basename(path), os.path.abspath(path), str(size[0]), str(size[1]), rgba_path, "pillow"]))
    with open(os.path.join(outdir, "manifest.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")


def skimage_files():
    require(["skimage"])
    import skimage
    data = os.path.join(os.path.dirname(skimage.__file__), "data")
    for name in sorted(os.listdir(data)):
        if name.endswith(".png"):
            print(os.path.join(data, name))


def seeds(outdir):
    """Small, varied inputs for the fuzzer: every colour type, depth, tRNS and interlacing."""
    os.makedirs(outdir, exist_ok=True)
    rng = random.Random(7)
    channels_of = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
    combos = [(0, [1, 2, 4, 8, 16]), (2, [8, 16]), (3, [1, 2, 4, 8]), (4, [8, 16]), (6, [8, 16])]
    n = 0
    for color_type, depths in combos:
        for depth in depths:
            for interlace in (0, 1):
                w, h = rng.choice([(1, 1), (9, 7), (17, 3)])
                samples = make_samples(rng, w, h, channels_of[color_type], depth)
                palette = trns = None
                if color_type == 3:
                    palette = [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(1 << depth)]
                    trns = bytes([0, 128])
                elif color_type in (0, 2):
                    trns = b"".join(struct.pack(">H", v) for v in samples[0][0])
                png = encode_png(samples, depth, color_type, interlace, lambda r: r % 5, (9, 0),
                                 lambda size: [size // 2, size - size // 2] if size > 1 else [size], palette, trns)
                with open(os.path.join(outdir, f"seed-{n:02}-ct{color_type}-d{depth}-i{interlace}.png"), "wb") as f:
                    f.write(png)
                n += 1


class BitWriter:
    def __init__(self):
        self.out, self.acc, self.n = bytearray(), 0, 0

    def bits(self, value, count):
        self.acc |= value << self.n
        self.n += count
        while self.n >= 8:
            self.out.append(self.acc & 0xFF)
            self.acc >>= 8
            self.n -= 8

    def code(self, value, length):  # Huffman codes go out most significant bit first
        self.bits(int(format(value, f"0{length}b")[::-1], 2), length)

    def align(self):
        if self.n:
            self.bits(0, 8 - self.n)


def empty_dynamic_block(w):
    """A non-final dynamic block with only an end-of-block code: a table build for no output."""
    w.bits(0, 1)
    w.bits(2, 2)
    w.bits(0, 5)   # 257 literal/length codes
    w.bits(0, 5)   # 1 distance code
    w.bits(14, 4)  # 18 code-length codes, order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1
    lengths = {18: 1, 0: 2, 1: 2}  # codes: 18 -> 0, 0 -> 10, 1 -> 11
    for symbol in [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1]:
        w.bits(lengths.get(symbol, 0), 3)
    w.code(0, 1); w.bits(138 - 11, 7)   # literals 0-137: unused
    w.code(0, 1); w.bits(118 - 11, 7)   # literals 138-255: unused
    w.code(0b11, 2)                     # end of block: 1 bit
    w.code(0b10, 2)                     # the one distance code: unused
    w.code(0, 1)                        # end of block


def hostile(outdir):
    """Files of at most 1 MiB that cost time or memory out of proportion (issue 12):
    tail-1gib       a 64x64 RGBA8 image whose zlib stream goes on with 1 GiB of zeros (libpng and
                    Pillow stop at the last row)
    zeros-max       an all-zero 11000x11000 RGBA16 image: ~968 MB of scanlines in under 1 MiB, the
                    most a file that small can legitimately ask for under the default pixel limit
    empty-blocks    a 64x64 image whose stream starts with 1 MiB of empty dynamic blocks
    issue-69-bytes  69 bytes claiming a 134,217,728x1 RGBA16 Adam7 image
    """
    def write(name, chunks):
        png = b"\x89PNG\r\n\x1a\n" + b"".join(chunk(kind, data) for kind, data in chunks)
        with open(os.path.join(outdir, name + ".png"), "wb") as f:
            f.write(png)

    def ihdr(width, height, depth, color_type, interlace=0):
        return (b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, interlace))

    rows = b"".join(b"\x00" + bytes((x * 4 + y) & 0xFF for x in range(256)) for y in range(64))

    compressor = zlib.compressobj(9)
    stream = compressor.compress(rows)
    block = bytes(1 << 20)
    for _ in range(1024):
        stream += compressor.compress(block)
    stream += compressor.flush()
    write("tail-1gib", [ihdr(64, 64, 8, 6), (b"IDAT", stream), (b"IEND", b"")])

    compressor = zlib.compressobj(9)
    row = bytes(1 + 11000 * 8)
    stream = b"".join(compressor.compress(row) for _ in range(11000)) + compressor.flush()
    write("zeros-max", [ihdr(11000, 11000, 16, 6), (b"IDAT", stream), (b"IEND", b"")])

    w = BitWriter()
    w.bits(0x78, 8)
    w.bits(0x01, 8)
    while len(w.out) < (1 << 20) - 20000:
        empty_dynamic_block(w)
    w.bits(1, 1)  # final stored block with the rows
    w.bits(0, 2)
    w.align()
    w.bits(len(rows), 16)
    w.bits(~len(rows) & 0xFFFF, 16)
    stream = bytes(w.out) + rows + struct.pack(">I", zlib.adler32(rows))
    write("empty-blocks", [ihdr(64, 64, 8, 6), (b"IDAT", stream), (b"IEND", b"")])

    write("issue-69-bytes", [ihdr(134217728, 1, 16, 6, 1), (b"IDAT", bytes.fromhex("78010100 00ffff00 00000100")), (b"IEND", b"")])


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    command = argv[1]
    if command == "check":
        require(["PIL", "numpy"] + (["skimage"] if "--skimage" in argv else []))
        import PIL
        print(f"python {sys.version.split()[0]}, Pillow {PIL.__version__}")
    elif command == "generate":
        generate(argv[2])
    elif command == "seeds":
        seeds(argv[2])
    elif command == "hostile":
        hostile(argv[2])
    elif command == "decode":
        decode(argv[2], argv[3:])
    elif command == "skimage-files":
        skimage_files()
    else:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

// libFuzzer entry point for PNGDecoder. Built by fuzz.sh with `swiftc -sanitize=fuzzer,address`
// together with the decoder's sources (see README.md in this folder).
//
// Each input is parsed and, if that succeeds, decoded twice (whole image, then a crop scaled with
// the box filter). An input whose only defect is a chunk CRC is also decoded with its CRCs
// repaired, so mutations reach the inflater and the filters instead of stopping at the CRC check.
//
// Besides crashes and ASan reports, the target traps when a decode breaks the decoder's limits:
// more than 64 bytes per image pixel (plus 256 KiB) allocated beyond the output, or more than
// 2 × the input (plus 256 KiB) allocated by the parse. Allocations are counted with ASan's
// malloc/free hooks. libFuzzer's -timeout (set by fuzz.sh) catches slow inputs.

// The sanitizer runtime's C functions; their arguments are plain pointers and integers, which the
// Swift and C calling conventions pass alike on x86-64 and arm64.
@_silgen_name("__sanitizer_install_malloc_and_free_hooks")
private func installMallocAndFreeHooks(
    _ malloc: @convention(c) (UnsafeRawPointer?, Int) -> Void,
    _ free: @convention(c) (UnsafeRawPointer?) -> Void
) -> Int32

@_silgen_name("__sanitizer_get_allocated_size")
private func allocatedSize(_ pointer: UnsafeRawPointer?) -> Int

/// Live heap bytes and their high-water mark since the last reset. The fuzzer runs inputs on one
/// thread; the hooks run on whichever thread allocates, which is that one for the decoder.
private enum HeapMeter {
    nonisolated(unsafe) static var live = 0
    nonisolated(unsafe) static var peak = 0
    nonisolated(unsafe) static var installed = false

    static func install() {
        guard !installed else { return }
        installed = true
        _ = installMallocAndFreeHooks({ _, size in
            HeapMeter.live &+= size
            if HeapMeter.live > HeapMeter.peak { HeapMeter.peak = HeapMeter.live }
        }, { pointer in
            HeapMeter.live &-= allocatedSize(pointer)
        })
    }

    /// Runs `body` and returns how far the heap grew above its level at the start, at its highest.
    static func growth<R>(_ body: () throws -> R) rethrows -> (R, Int) {
        let base = live
        peak = live
        let result = try body()
        return (result, peak - base)
    }
}

/// The decoder's pixel limit here: 4 Mi pixels (16 MiB of output), so an input decodes in well under
/// a second even under ASan.
private let maximumPixelCount = 1 << 22
private let slack = 256 << 10

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNGDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    HeapMeter.install()
    let input = UnsafeRawBufferPointer(start: data, count: size)
    if check(input) == .crcMismatch, let repaired = repairingCRCs(input) {
        repaired.withUnsafeBytes { _ = check($0) }
    }
    return 0
}

private enum Outcome { case decoded, crcMismatch, failed }

private func check(_ input: UnsafeRawBufferPointer) -> Outcome {
    let (parsed, parseGrowth) = HeapMeter.growth { Result { () throws(PNGError) in
        try PNGDecoder(bytes: input, maximumPixelCount: maximumPixelCount)
    } }
    if parseGrowth > 2 * input.count + slack {
        fatalError("parse of \(input.count) bytes allocated \(parseGrowth) bytes")
    }
    let decoder: PNGDecoder
    switch parsed {
    case .success(let value): decoder = value
    case .failure(.crcMismatch): return .crcMismatch
    case .failure: return .failed
    }
    let pixels = decoder.width * decoder.height
    let crop = PNGRect(x: decoder.width / 4, y: decoder.height / 3, width: max(1, decoder.width / 2), height: max(1, decoder.height / 2))
    var outcome = Outcome.decoded
    for transform in [PNGTransform.identity, PNGTransform(crop: crop, outputWidth: 37, outputHeight: 23, filter: .box)] {
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: decoder.outputByteCount(for: transform), alignment: 16)
        defer { output.deallocate() }
        let (result, growth) = HeapMeter.growth { Result { () throws(PNGError) in
            try decoder.decode(into: output, transform: transform)
        } }
        if growth > 64 * pixels + slack {
            fatalError("decode of \(decoder.width)×\(decoder.height) allocated \(growth) bytes beyond the output")
        }
        if case .failure = result { outcome = .failed }
    }
    return outcome
}

/// A copy of `input` with every chunk's CRC recomputed, or nil if the chunk structure is broken
/// or nothing changed.
private func repairingCRCs(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
    var bytes = [UInt8](input)
    var offset = 8
    var changed = false
    while offset + 12 <= bytes.count {
        let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
        guard length <= bytes.count - offset - 12 else { break }
        let crc = bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[(offset + 4)..<(offset + 8 + length)])) }
        let stored = offset + 8 + length
        let big: [UInt8] = [UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)]
        if Array(bytes[stored..<(stored + 4)]) != big {
            bytes.replaceSubrange(stored..<(stored + 4), with: big)
            changed = true
        }
        offset += 12 + length
    }
    return changed ? bytes : nil
}

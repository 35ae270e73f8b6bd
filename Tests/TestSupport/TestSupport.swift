// Helpers shared by the memory and cache test suites: deterministic content, threads, RSS.
// A plain (package-internal) target, so that no product exports it.
#if canImport(Glibc)
import Glibc
#endif

/// Deterministic content: word `index` of object `seed`. Never zero, so a dropped page
/// (which reads as zeros) can never pass verification.
@inline(__always)
package func expectedWord(seed: UInt64, index: Int) -> UInt64 {
    var z = seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 31)) &* 0x94D0_49BB_1331_11EB
    return (z ^ (z >> 29)) | 1
}

/// Fills words `words` (all by default) of `bytes` with the content of `seed`.
package func fill(_ bytes: UnsafeMutableRawBufferPointer, seed: UInt64, words: Range<Int>? = nil) {
    // Rebound for the duration of the loop only: typed access keeps debug builds fast.
    bytes.withMemoryRebound(to: UInt64.self) { words64 in
        for index in words ?? 0..<(bytes.count / 8) { words64[index] = expectedWord(seed: seed, index: index) }
    }
}

/// Index of the first word that differs from the content of `seed`, or nil.
package func firstMismatch(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> Int? {
    bytes.withMemoryRebound(to: UInt64.self) { words in
        for index in 0..<(bytes.count / 8) where words[index] != expectedWord(seed: seed, index: index) {
            return index
        }
        return nil
    }
}

/// True when every word of `bytes` is the content of `seed`.
package func verify(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> Bool {
    firstMismatch(bytes, seed: seed) == nil
}

/// Runs `body(index)` on `count` new threads at once (not a pool: all of them wait together).
package func runThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Box: Sendable {
        let body: @Sendable (Int) -> Void
        let index: Int
        init(_ body: @escaping @Sendable (Int) -> Void, _ index: Int) { self.body = body; self.index = index }
    }
    var threads: [pthread_t] = []
    for index in 0..<count {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Box(body, index)).toOpaque()
        let status = pthread_create(&thread, nil, { context in
            let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
            box.body(box.index)
            return nil
        }, context)
        precondition(status == 0)
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}

/// Whether this test binary runs under AddressSanitizer (its quarantine inflates RSS).
package let runningUnderAddressSanitizer: Bool = dlsym(nil, "__asan_init") != nil

/// Whether this test binary runs under ThreadSanitizer (5 to 15 times slower).
package let runningUnderThreadSanitizer: Bool = dlsym(nil, "__tsan_init") != nil

/// A lower bound on the work a time-boxed test must get done: `count` normally, 0 (some work,
/// any amount) under a sanitizer, which slows every memory access by an order of magnitude.
package func minimumWork(_ count: Int) -> Int {
    runningUnderThreadSanitizer || runningUnderAddressSanitizer ? 0 : count
}

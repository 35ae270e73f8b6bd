// The baseline: the same workload with objects in ordinary `[UInt8]` arrays that are never
// evicted, as an ordinary unbounded cache keeps them. Under a memory limit smaller than the
// working set it must be OOM-killed: that is what the volatile cache is compared with.

import Synchronization

/// Objects in heap arrays, generated on first access and kept for the whole run.
final class HeapStore: ObjectStore, @unchecked Sendable {  // All state is behind `shards`' mutexes.
    private let generator: ContentGenerator
    private let shards: [Shard]
    private let generations = Atomic<Int>(0)
    private let bytes = Atomic<Int>(0)

    init(generator: ContentGenerator) {
        self.generator = generator
        self.shards = (0..<16).map { _ in Shard() }
    }

    var strategyName: String { "heap" }

    func withObject<Result>(_ key: Int, _ body: (UnsafeRawBufferPointer) -> Result) throws -> Result {
        let shard = shards[key & (shards.count - 1)]
        // Copying the array out is a retain; the bytes are read outside the lock.
        if let object = shard.objects.withLock({ $0[key] }) {
            return object.withUnsafeBytes(body)
        }
        let size = generator.size(of: key)
        let object = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            generator.fill(key, into: UnsafeMutableRawBufferPointer(buffer))
            count = size
        }
        // Two threads may generate the same key at once: the first one stored wins.
        let (stored, inserted) = shard.objects.withLock { objects -> ([UInt8], Bool) in
            if let existing = objects[key] { return (existing, false) }
            objects[key] = object
            return (object, true)
        }
        if inserted {
            generations.add(1, ordering: .relaxed)
            bytes.add(size, ordering: .relaxed)
        }
        return stored.withUnsafeBytes(body)
    }

    func statistics() -> StoreStatistics {
        var statistics = StoreStatistics()
        statistics.generations = generations.load(ordering: .relaxed)
        statistics.hotBytes = bytes.load(ordering: .relaxed)
        return statistics
    }

    func stop() {}

    /// A class, because `Mutex` is not copyable and cannot be an array element.
    private final class Shard: Sendable {
        let objects = Mutex<[Int: [UInt8]]>([:])
    }
}

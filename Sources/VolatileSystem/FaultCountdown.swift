import Synchronization

/// A test hook that makes the next `count` attempts at something fail: the arena's populate
/// (ENOMEM) and the read path's grace-period barrier (`membarrier(2)`) use one each. Callers
/// consult it only in builds with `-DVOLATILE_INTERNAL_CHECKS`, so release builds pay nothing.
package struct FaultCountdown: ~Copyable, Sendable {
    private let remaining = Atomic<Int>(0)

    package init() {}

    /// The next `count` calls to ``fire()`` return true (0 disarms it).
    package func arm(_ count: Int) {
        remaining.store(count, ordering: .relaxed)
    }

    /// Whether this attempt should fail (it takes one from the countdown).
    package func fire() -> Bool {
        remaining.load(ordering: .relaxed) > 0 && remaining.subtract(1, ordering: .relaxed).newValue >= 0
    }
}

extension Dictionary {
    /// Rebuilds the table at its count when it is below a quarter of its capacity: a
    /// dictionary never shrinks on its own, so one that held many entries keeps their storage
    /// after a bulk removal. The threshold keeps the rebuilds amortized O(1) per removal.
    package mutating func shrinkIfSparse() {
        guard capacity > 64, count * 4 < capacity else { return }
        self = Dictionary(minimumCapacity: count).merging(self) { first, _ in first }
    }
}

import Testing
@testable import VolatileCache

@Suite("TinyLFU admission")
struct AdmissionTests {
    @Test("a candidate must be strictly more frequent than its victim")
    func equalWeights() {
        var admission = TinyLFU(expectedEntries: 64)
        for _ in 0..<3 { admission.recordAccess(hash: 1) }
        for _ in 0..<2 { admission.recordAccess(hash: 2) }
        admission.recordAccess(hash: 3)
        #expect(admission.admit(candidate: 1, victim: 2))
        #expect(!admission.admit(candidate: 2, victim: 1))
        #expect(!admission.admit(candidate: 3, victim: 3), "a tie keeps the incumbent")
        #expect(admission.admit(candidate: 3, victim: 99), "anything seen beats the never seen")
    }

    @Test("size-aware: frequency per byte against the victims taken together")
    func weighted() {
        var admission = TinyLFU(expectedEntries: 64)
        for _ in 0..<8 { admission.recordAccess(hash: 10) }  // large, 8 accesses
        for key: UInt64 in 20..<24 { for _ in 0..<3 { admission.recordAccess(hash: key) } }  // four small, 3 each
        let large = WeightedHash(hash: 10, weight: 4_000)
        let smalls = (20..<24).map { WeightedHash(hash: UInt64($0), weight: 1_000) }
        // 8 accesses for 4,000 bytes lose against 12 accesses in the same bytes...
        #expect(!admission.admit(candidate: large, victims: smalls))
        // ...but beat one small victim's bytes at a lower density.
        #expect(admission.admit(candidate: WeightedHash(hash: 20, weight: 1_000), victims: [large]))
        #expect(admission.admit(candidate: large, victims: [WeightedHash]()), "no victim: nothing to beat")
        #expect(!admission.admit(candidate: WeightedHash(hash: 77, weight: 1), victims: [WeightedHash(hash: 10, weight: 1_000_000)]),
                "never seen (0 accesses) never displaces anything")
    }

    @Test("the policy's region sizes follow the configured fractions")
    func regions() {
        var policy = AdaptivePolicy<Int>(capacity: 1_000, expectedEntries: 1_000)
        #expect(policy.windowCapacity == 10)
        #expect(policy.protectedCapacity == 792)
        for key in 0..<1_000 { policy.recordMiss(key, hash: UInt64(key), weight: 1) { _ in } }
        #expect(policy.weightedSize == 1_000)
        for key in 0..<900 { policy.recordHit(key, hash: UInt64(key)) }
        let regions = policy.regionWeights
        #expect(regions.window == 10)
        #expect(regions.protected == 792)
        #expect(regions.probation == 198)
    }

    @Test("admission decides residency: a frequent newcomer gets in, a one-off does not")
    func admissionDecidesResidency() {
        var policy = AdaptivePolicy<Int>(capacity: 100, expectedEntries: 100)
        // Fill with keys accessed twice each.
        for key in 0..<100 {
            policy.recordMiss(key, hash: UInt64(key), weight: 1) { _ in }
            policy.recordHit(key, hash: UInt64(key))
        }
        #expect(policy.count == 100)
        // Newcomers push the window's oldest key out as the candidate (the window holds one
        // key here): 1,000 pushes out 99, which ties with its victim (2 accesses each) and
        // loses; 1,001 pushes out 1,000, a one-off, which loses too. Nothing frequent leaves.
        var evicted: [Int] = []
        for key in 1_000..<1_002 { policy.recordMiss(key, hash: UInt64(key), weight: 1) { evicted.append($0) } }
        #expect(evicted == [99, 1_000])
        #expect((0..<99).allSatisfy { policy.contains($0) })
        // A newcomer accessed often (hits the sketch while absent) wins.
        for _ in 0..<5 { policy.recordHit(2_000, hash: 2_000) }
        evicted = []
        policy.recordMiss(2_000, hash: 2_000, weight: 1) { evicted.append($0) }
        policy.recordMiss(2_001, hash: 2_001, weight: 1) { evicted.append($0) }
        #expect(policy.contains(2_000))
        #expect(evicted.count == 2)
        #expect(!evicted.contains(2_000))
        #expect(policy.weightedSize <= policy.capacity)
    }

    @Test("the eviction order puts low value per byte first")
    func evictionOrder() {
        var policy = AdaptivePolicy<Int>(capacity: 10_000, expectedEntries: 64)
        policy.recordMiss(1, hash: 1, weight: 4_000) { _ in }  // large, accessed 3 times
        policy.recordHit(1, hash: 1)
        policy.recordHit(1, hash: 1)
        policy.recordMiss(2, hash: 2, weight: 100) { _ in }  // small, accessed 3 times
        policy.recordHit(2, hash: 2)
        policy.recordHit(2, hash: 2)
        policy.recordMiss(3, hash: 3, weight: 100) { _ in }  // small, once
        #expect(policy.evictionOrder() == [1, 3, 2])
    }

    @Test("LRU evicts the least recently used, by weight")
    func lru() {
        var policy = LRUPolicy<Int>(capacity: 3)
        var evicted: [Int] = []
        for key in 0..<3 { policy.recordMiss(key, hash: UInt64(key), weight: 1) { evicted.append($0) } }
        policy.recordHit(0, hash: 0)
        policy.recordMiss(3, hash: 3, weight: 2) { evicted.append($0) }
        #expect(evicted == [1, 2])
        #expect(policy.evictionOrder() == [0, 3])
        policy.recordMiss(4, hash: 4, weight: 4) { evicted.append($0) }
        #expect(evicted.last == 4, "larger than the capacity: not admitted")
    }
}

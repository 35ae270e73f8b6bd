import Testing
@testable import VolatileCache

@Suite("Frequency sketch")
struct FrequencySketchTests {
    @Test("estimates never undercount and stay close for a skewed stream")
    func accuracy() {
        // 64 keys with 1...14 accesses each, 2,000 one-off keys: well within one sample period.
        var sketch = FrequencySketch(expectedEntries: 512)
        var truth: [UInt64: Int] = [:]
        for key in 0..<64 {
            let count = 1 + key % 14
            for _ in 0..<count { sketch.increment(hash: UInt64(key)) }
            truth[UInt64(key)] = count
        }
        for key in 10_000..<12_000 { sketch.increment(hash: UInt64(key)) }
        #expect(sketch.resetCount == 0)
        var exact = 0
        for (hash, count) in truth {
            let estimate = sketch.frequency(hash: hash)
            #expect(estimate >= count, "count-min never undercounts (before halving)")
            if estimate == count { exact += 1 }
        }
        // Conservative update keeps collisions rare at this load.
        #expect(exact >= 60)
        #expect(sketch.frequency(hash: 99_999_999) <= 1)
    }

    @Test("counters saturate at 15")
    func saturation() {
        var sketch = FrequencySketch(expectedEntries: 1024)
        for _ in 0..<100 { sketch.increment(hash: 7) }
        #expect(sketch.frequency(hash: 7) == FrequencySketch.maximumFrequency)
    }

    @Test("every counter halves after the sample period")
    func halving() {
        var sketch = FrequencySketch(expectedEntries: 16)
        #expect(sketch.sampleSize == 160)
        for _ in 0..<12 { sketch.increment(hash: 1) }
        for _ in 0..<5 { sketch.increment(hash: 2) }
        #expect(sketch.frequency(hash: 1) == 12)
        #expect(sketch.frequency(hash: 2) == 5)
        // Fill the rest of the period with other keys; the 160th access triggers the halving.
        var other: UInt64 = 1_000
        while sketch.resetCount == 0 {
            sketch.increment(hash: other)
            other += 1
        }
        #expect(sketch.frequency(hash: 1) == 6)
        #expect(sketch.frequency(hash: 2) == 2)
        #expect(sketch.additions < sketch.sampleSize / 2 + 1)
    }

    @Test("ensureCapacity grows (and forgets) only when needed")
    func growth() {
        var sketch = FrequencySketch(expectedEntries: 100)
        #expect(sketch.capacity == 128)
        sketch.increment(hash: 3)
        sketch.ensureCapacity(100)
        #expect(sketch.frequency(hash: 3) == 1)
        sketch.ensureCapacity(1000)
        #expect(sketch.capacity == 1024)
        #expect(sketch.frequency(hash: 3) == 0)
    }

    @Test("doorkeeper absorbs first accesses and is cleared with the halving")
    func doorkeeper() {
        var admission = TinyLFU(expectedEntries: 16, usesDoorkeeper: true)
        admission.recordAccess(hash: 42)
        #expect(admission.sketch.frequency(hash: 42) == 0, "first access goes to the doorkeeper only")
        #expect(admission.frequency(hash: 42) == 1)
        admission.recordAccess(hash: 42)
        #expect(admission.sketch.frequency(hash: 42) == 1)
        #expect(admission.frequency(hash: 42) == 2)
        var other: UInt64 = 5_000
        while admission.sketch.resetCount == 0 {
            admission.recordAccess(hash: other)
            other += 1
        }
        #expect(admission.doorkeeper?.contains(hash: 42) == false)
        #expect(admission.frequency(hash: 42) == 0)
    }
}

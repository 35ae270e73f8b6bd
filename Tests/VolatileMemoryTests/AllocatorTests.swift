import Testing
@testable import VolatileMemory

@Suite("Extent allocator")
struct AllocatorTests {
    @Test("Random allocate/free keeps every invariant and coalesces back to one block")
    func randomAllocateFree() {
        var allocator = ExtentAllocator(pageCount: 1 << 16)
        var generator = SplitMix64(seed: 2024)
        var live: [(start: Int, pages: Int)] = []
        var owner = [Int](repeating: -1, count: 1 << 16)
        for step in 0..<20_000 {
            if live.isEmpty || generator.next() % 100 < 55 {
                // Mixed sizes: mostly small, sometimes large, like cached objects.
                let pages = generator.next() % 10 == 0 ? Int(1 + generator.next() % 1024) : Int(1 + generator.next() % 16)
                if let start = allocator.allocate(pages: pages) {
                    for page in start..<start + pages {
                        #expect(owner[page] == -1, "page \(page) handed out twice")
                        owner[page] = step
                    }
                    live.append((start, pages))
                }
            } else {
                let victim = live.remove(at: Int(generator.next() % UInt64(live.count)))
                for page in victim.start..<victim.start + victim.pages { owner[page] = -1 }
                allocator.free(start: victim.start, pages: victim.pages)
            }
            if step % 1000 == 0 { allocator.checkInvariants() }
        }
        allocator.checkInvariants()
        #expect(allocator.allocatedPages == live.reduce(0) { $0 + $1.pages })
        for extent in live { allocator.free(start: extent.start, pages: extent.pages) }
        allocator.checkInvariants()
        #expect(allocator.freeBlockCount == 1)
        #expect(allocator.largestFreeRun == 1 << 16)
    }

    @Test("Fragmentation stays bounded under churn: large runs remain allocatable")
    func boundedFragmentation() {
        let pageCount = 1 << 15
        var allocator = ExtentAllocator(pageCount: pageCount)
        var generator = SplitMix64(seed: 7)
        var live: [(start: Int, pages: Int)] = []
        // Churn at about 50% occupancy with sizes 1...64 pages.
        for _ in 0..<50_000 {
            let used = allocator.allocatedPages
            if used < pageCount / 2 || live.isEmpty {
                let pages = Int(1 + generator.next() % 64)
                if let start = allocator.allocate(pages: pages) { live.append((start, pages)) }
            } else {
                let victim = live.swapRemoveRandom(&generator)
                allocator.free(start: victim.start, pages: victim.pages)
            }
        }
        allocator.checkInvariants()
        // Half the region is free; a run of 64 pages (the largest size in use) must still fit
        // and the free space must not have shattered into single pages.
        #expect(allocator.freePages >= pageCount / 2 - 64)
        #expect(allocator.largestFreeRun >= 64)
        #expect(allocator.freeBlockCount < allocator.freePages / 4, "free space shattered: \(allocator.freeBlockCount) blocks")
    }

    @Test("Exhaustion returns nil, then a free makes room again")
    func exhaustion() {
        var allocator = ExtentAllocator(pageCount: 100)
        let first = allocator.allocate(pages: 60)
        #expect(first == 0)
        #expect(allocator.allocate(pages: 41) == nil)
        let second = allocator.allocate(pages: 40)
        #expect(second == 60)
        #expect(allocator.allocate(pages: 1) == nil)
        allocator.free(start: 0, pages: 60)
        #expect(allocator.allocate(pages: 60) == 0)
        allocator.checkInvariants()
    }

    @Test("A reservation the kernel refuses is retried smaller, and the arena says so")
    func refusedReservationRetriesSmaller() throws {
        // 2^47 bytes is the whole x86-64 user address space: the kernel must refuse it.
        var configuration = VolatileArena.Configuration(strategy: .userfaultfd, regionByteCount: 1 << 47)
        configuration.minimumRegionByteCount = 1 << 30
        configuration.maximumExtentByteCount = 1 << 20
        let arena = try VolatileArena(configuration: configuration)
        var extent = try arena.allocate(byteCount: 1 << 20)
        extent.withUnsafeMutableBytes { fill($0, seed: 3) }
        let reserved = arena.statistics.reservedBytes
        #expect(reserved < 1 << 47 && reserved >= 1 << 30)
        #expect(arena.reservationNotes.contains { $0.contains("refused") && $0.contains("retrying") })
        #expect(extent.withUnsafeBytes { firstMismatch($0, seed: 3) } == nil)
    }

    @Test("Arena grows by further regions when one is full, and extents never overlap")
    func arenaGrowth() throws {
        var configuration = VolatileArena.Configuration(regionByteCount: 16 << 20)
        configuration.minimumRegionByteCount = 16 << 20
        let arena = try VolatileArena(configuration: configuration)
        var extents: [Slot<PinnedExtent>] = []
        for index in 0..<40 {
            var extent = try arena.allocate(byteCount: 1 << 20)
            extent.withUnsafeMutableBytes { fill($0, seed: UInt64(index)) }
            extents.append(Slot(extent))
        }
        #expect(arena.statistics.regionCount == 3)
        #expect(arena.statistics.reservedBytes == 48 << 20)
        for (index, slot) in extents.enumerated() {
            #expect(slot.value!.withUnsafeBytes { firstMismatch($0, seed: UInt64(index)) } == nil)
        }
    }
}

extension Array {
    mutating func swapRemoveRandom(_ generator: inout SplitMix64) -> Element {
        let index = Int(generator.next() % UInt64(count))
        swapAt(index, count - 1)
        return removeLast()
    }
}

/// A page-run allocator for one region: segregated free lists by power-of-two size
/// class with a bitmap of non-empty classes, and boundary maps for O(1) coalescing.
///
/// Allocation looks at a few blocks of the request's own class, then takes the first
/// block of the next non-empty larger class (every block there fits), splitting off the
/// rest. This is good-fit in O(1) (bounded scan plus one bit search), like TLSF; freeing
/// merges with both free neighbours at once, so no two free blocks are ever adjacent.
/// Fragmentation is bounded as in TLSF: a request fails only if no free run of the
/// request's size class or larger exists.
///
/// Not thread-safe: the arena guards it with its lock.
struct ExtentAllocator {
    private struct FreeBlock {
        var length: Int
        var previous: Int  // start of the previous block in the same class, or -1
        var next: Int  // start of the next block in the same class, or -1
    }

    /// Pages managed.
    let pageCount: Int
    /// Pages currently allocated.
    private(set) var allocatedPages = 0
    /// Extents currently allocated.
    private(set) var allocatedExtents = 0

    private var blocks: [Int: FreeBlock] = [:]  // start -> block
    private var startOfBlockEnding: [Int: Int] = [:]  // end (exclusive) -> start
    private var heads = [Int](repeating: -1, count: Int.bitWidth)
    private var nonEmptyClasses: UInt64 = 0

    /// How many blocks of the request's own class are examined before moving up a class.
    private static let sameClassScanLimit = 8

    init(pageCount: Int) {
        precondition(pageCount > 0)
        self.pageCount = pageCount
        insertFree(start: 0, length: pageCount)
    }

    /// Free pages in all.
    var freePages: Int { pageCount - allocatedPages }

    /// Number of free blocks (a fragmentation measure: 1 means fully coalesced).
    var freeBlockCount: Int { blocks.count }

    /// The longest free run, in pages.
    var largestFreeRun: Int {
        guard nonEmptyClasses != 0 else { return 0 }
        let topClass = UInt64.bitWidth - 1 - nonEmptyClasses.leadingZeroBitCount
        var best = 0
        var cursor = heads[topClass]
        while cursor >= 0, let block = blocks[cursor] {
            best = max(best, block.length)
            cursor = block.next
        }
        return best
    }

    @inline(__always)
    private static func sizeClass(_ length: Int) -> Int {
        Int.bitWidth - 1 - length.leadingZeroBitCount
    }

    /// Allocates a run of `length` pages and returns its first page, or nil if none fits.
    /// - Complexity: O(1) (a bounded scan of one class and one bit search).
    mutating func allocate(pages length: Int) -> Int? {
        precondition(length > 0)
        let ownClass = Self.sizeClass(length)
        var chosen = -1
        if nonEmptyClasses & (1 << UInt64(ownClass)) != 0 {
            var cursor = heads[ownClass]
            var scanned = 0
            while cursor >= 0 && scanned < Self.sameClassScanLimit {
                let block = blocks[cursor]!
                if block.length >= length { chosen = cursor; break }
                cursor = block.next
                scanned += 1
            }
        }
        if chosen < 0 {
            let largerClasses = ownClass + 1 < 64 ? nonEmptyClasses & ~((UInt64(1) << UInt64(ownClass + 1)) - 1) : 0
            guard largerClasses != 0 else { return nil }
            chosen = heads[largerClasses.trailingZeroBitCount]
        }
        let block = removeFree(start: chosen)
        if block.length > length {
            insertFree(start: chosen + length, length: block.length - length)
        }
        allocatedPages += length
        allocatedExtents += 1
        checkInvariantsIfEnabled()
        return chosen
    }

    /// Returns a run to the allocator, merging it with free neighbours.
    /// - Complexity: O(1).
    mutating func free(start: Int, pages length: Int) {
        precondition(start >= 0 && length > 0 && start + length <= pageCount, "extent outside its region")
        precondition(blocks[start] == nil, "double free of an extent")
        var mergedStart = start
        var mergedLength = length
        if let previousStart = startOfBlockEnding[start] {
            let previous = removeFree(start: previousStart)
            mergedStart = previousStart
            mergedLength += previous.length
        }
        if blocks[start + length] != nil {
            let next = removeFree(start: start + length)
            mergedLength += next.length
        }
        insertFree(start: mergedStart, length: mergedLength)
        allocatedPages -= length
        allocatedExtents -= 1
        checkInvariantsIfEnabled()
    }

    /// Gives back the free-block tables' storage when they are mostly empty (after a bulk
    /// release has coalesced what had been many fragments): a dictionary never shrinks on its
    /// own. Rebuilding only below a quarter of the capacity keeps it amortized O(1) per free.
    mutating func shrinkTablesIfSparse() {
        blocks.shrinkIfSparse()
        startOfBlockEnding.shrinkIfSparse()
    }

    /// With `-DVOLATILE_INTERNAL_CHECKS`, verifies the invariants after every change (as
    /// swift-collections does under COLLECTIONS_INTERNAL_CHECKS); otherwise nothing.
    @inline(__always)
    private func checkInvariantsIfEnabled() {
        #if VOLATILE_INTERNAL_CHECKS
        checkInvariants()
        #endif
    }

    private mutating func insertFree(start: Int, length: Int) {
        let sizeClass = Self.sizeClass(length)
        let head = heads[sizeClass]
        blocks[start] = FreeBlock(length: length, previous: -1, next: head)
        if head >= 0 { blocks[head]!.previous = start }
        heads[sizeClass] = start
        nonEmptyClasses |= 1 << UInt64(sizeClass)
        startOfBlockEnding[start + length] = start
    }

    private mutating func removeFree(start: Int) -> FreeBlock {
        let block = blocks.removeValue(forKey: start)!
        let sizeClass = Self.sizeClass(block.length)
        if block.previous >= 0 {
            blocks[block.previous]!.next = block.next
        } else {
            heads[sizeClass] = block.next
            if block.next < 0 { nonEmptyClasses &= ~(1 << UInt64(sizeClass)) }
        }
        if block.next >= 0 { blocks[block.next]!.previous = block.previous }
        startOfBlockEnding.removeValue(forKey: start + block.length)
        return block
    }

    /// Verifies the allocator's invariants; traps on violation. Expensive: called by tests, and
    /// after every change when built with `-DVOLATILE_INTERNAL_CHECKS`.
    func checkInvariants() {
        var freeTotal = 0
        var runs: [(Int, Int)] = []
        for sizeClass in 0..<heads.count {
            let bit = nonEmptyClasses & (1 << UInt64(sizeClass)) != 0
            precondition(bit == (heads[sizeClass] >= 0), "class bitmap out of sync")
            var cursor = heads[sizeClass]
            var previous = -1
            while cursor >= 0 {
                let block = blocks[cursor]!
                precondition(block.previous == previous, "broken free list link")
                precondition(Self.sizeClass(block.length) == sizeClass, "block in wrong class")
                precondition(startOfBlockEnding[cursor + block.length] == cursor, "end map out of sync")
                freeTotal += block.length
                runs.append((cursor, block.length))
                previous = cursor
                cursor = block.next
            }
        }
        precondition(runs.count == blocks.count && runs.count == startOfBlockEnding.count, "maps out of sync")
        precondition(freeTotal == pageCount - allocatedPages, "free page count out of sync")
        runs.sort { $0.0 < $1.0 }
        for (first, second) in zip(runs, runs.dropFirst()) {
            precondition(first.0 + first.1 < second.0, "free blocks overlap or were not coalesced")
        }
        if let last = runs.last { precondition(last.0 + last.1 <= pageCount, "free block past the end") }
    }
}

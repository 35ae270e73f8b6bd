// Measuring what swap costs this process: a small start-up calibration (push a few MiB out with
// MADV_PAGEOUT, time bringing them back), and a per-thread major-fault meter for timing re-pins.

import CVolatileShim
import Glibc

/// Counts the calling thread's major faults (page-ins from swap or files), to attribute a
/// timed re-pin's cost to swap.
public struct MajorFaultMeter: Sendable {
    /// The thread's major faults so far (`getrusage(RUSAGE_THREAD)`; 0 where unavailable).
    public static func current() -> Int {
        var usage = rusage()
        // RUSAGE_THREAD (1): this thread only, so other threads' faults are not counted.
        guard getrusage(__rusage_who_t(1), &usage) == 0 else { return 0 }
        return usage.ru_majflt
    }
}

/// A start-up measurement of the swap's speed.
public enum SwapCalibration {
    /// What one calibration measured.
    public struct Sample: Sendable, Hashable {
        /// Bytes `MADV_PAGEOUT` sent to swap.
        public var swappedOutBytes: Int
        /// Time spent in the `MADV_PAGEOUT` calls.
        public var swapOutNanoseconds: UInt64
        /// Bytes brought back while touching the range (0 without major faults).
        public var swappedInBytes: Int
        /// Time spent touching the range.
        public var swapInNanoseconds: UInt64
        /// Major faults taken while touching it.
        public var majorFaults: Int

        /// Creates a sample from known figures (tests, or a measurement made elsewhere).
        public init(swappedOutBytes: Int, swapOutNanoseconds: UInt64, swappedInBytes: Int, swapInNanoseconds: UInt64, majorFaults: Int) {
            self.swappedOutBytes = swappedOutBytes
            self.swapOutNanoseconds = swapOutNanoseconds
            self.swappedInBytes = swappedInBytes
            self.swapInNanoseconds = swapInNanoseconds
            self.majorFaults = majorFaults
        }
    }

    /// Fills `byteCount` bytes of private memory with image-like data (half the bytes vary),
    /// pushes them out with `MADV_PAGEOUT` (Linux 5.4), and times touching them again.
    ///
    /// Without usable swap nothing leaves memory, and the sample has 0 bytes swapped in.
    /// - Parameter byteCount: The size (default 4 MiB: a few milliseconds on zram).
    /// - Returns: The sample, or nil when the memory or the advice is refused.
    public static func measure(byteCount: Int = 4 << 20) -> Sample? {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let size = max(page, byteCount / page * page)
        guard let memory = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), memory != MAP_FAILED else {
            return nil
        }
        defer { munmap(memory, size) }
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        let words = memory.bindMemory(to: UInt64.self, capacity: size / 8)
        for index in 0..<(size / 8) {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            words[index] = state & 0x00FF_00FF_00FF_00FF | 0x0100_0000_0000_0000
        }
        let clock = ContinuousClock()
        var outTime = Duration.zero  // time in the calls, not the waits for writeback
        var residency = [UInt8](repeating: 0, count: size / page)
        var swappedOut = 0
        // A swap file writes back asynchronously: its pages stay in the swap cache (resident to
        // mincore) until written, and a later PAGEOUT frees them. zram is done in one pass.
        for attempt in 0..<50 {
            if attempt > 0 { usleep(10_000) }
            let start = clock.now
            guard madvise(memory, size, vc_madv_pageout()) == 0 else { return nil }
            outTime += clock.now - start
            guard mincore(memory, size, &residency) == 0 else { return nil }
            swappedOut = residency.filter { $0 & 1 == 0 }.count * page
            if swappedOut >= size * 9 / 10 || (attempt >= 2 && swappedOut == 0) { break }
        }
        let faultsBefore = MajorFaultMeter.current()
        let inStart = clock.now
        var sum: UInt64 = 0
        for offset in stride(from: 0, to: size / 8, by: page / 8) { sum &+= words[offset] }
        let inTime = clock.now - inStart
        let faults = MajorFaultMeter.current() - faultsBefore
        guard sum != 0 else { return nil }  // keeps the reads; the data is never all zero
        return Sample(
            swappedOutBytes: swappedOut, swapOutNanoseconds: nanoseconds(outTime),
            // Swap readahead brings several pages per fault: every page that was out came back.
            swappedInBytes: faults > 0 ? swappedOut : 0, swapInNanoseconds: nanoseconds(inTime), majorFaults: faults)
    }

    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}

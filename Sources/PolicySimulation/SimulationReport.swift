
/// The synthetic suite of issue 15 and its table.
package enum SimulationReport {
    /// One row: a workload, a capacity, and every policy's result on it.
    package struct Row: Sendable {
        /// What the workload is.
        package var workload: String
        /// Capacity, as text.
        package var capacity: String
        /// LRU, adaptive (optionally adaptive+doorkeeper), optimum, optimum with cold misses.
        package var results: [SimulationResult]

        /// Creates a row.
        package init(workload: String, capacity: String, results: [SimulationResult]) {
            self.workload = workload
            self.capacity = capacity
            self.results = results
        }

        /// The result of the policy named `name`.
        package func result(_ name: String) -> SimulationResult? { results.first { $0.policy == name } }
    }

    /// Parameters shared by the equal-size workloads: keys, cache capacity in keys, accesses.
    package static let items = 1_000
    package static let capacity = 100
    package static let accesses = 200_000
    package static let seed: UInt64 = 0x1515

    /// The synthetic suite: Zipf 0.8/1.0/1.2 (equal sizes), Zipf 1.0 with periodic full scans
    /// (and the same Zipf without them), a popular set that moves halfway, and Zipf 1.1 with
    /// sizes spread like the demo's.
    /// - Parameter doorkeeper: Also run the adaptive policy with a doorkeeper.
    /// - Returns: The rows.
    package static func syntheticSuite(doorkeeper: Bool = false) -> [Row] {
        var rows: [Row] = []
        let capacityText = "\(capacity) of \(items) keys"
        for exponent in [0.8, 1.0, 1.2] {
            let trace = SyntheticWorkload.zipf(items: items, exponent: exponent, accesses: accesses, seed: seed)
            rows.append(Row(workload: "zipf \(exponent)", capacity: capacityText,
                            results: Simulation.compare(trace, capacity: capacity, doorkeeper: doorkeeper)))
        }
        let scans = SyntheticWorkload.zipfWithScans(items: items, exponent: 1.0, accesses: accesses, scanEvery: 10_000, seed: seed)
        rows.append(Row(workload: "zipf 1.0 + full scan every 10k", capacity: capacityText,
                        results: Simulation.compare(scans, capacity: capacity, doorkeeper: doorkeeper)))
        let shifting = SyntheticWorkload.shiftingZipf(items: items, exponent: 1.0, accesses: accesses, seed: seed)
        rows.append(Row(workload: "zipf 1.0, popular set moves at 1/2", capacity: capacityText,
                        results: Simulation.compare(shifting, capacity: capacity, doorkeeper: doorkeeper)))
        let sized = SyntheticWorkload.zipfVariableSizes(
            items: 704, exponent: 1.1, accesses: accesses, minimumWeight: 45 << 10, maximumWeight: 6_656 << 10, seed: seed)
        let totalBytes = Set(sized.accesses.map { [$0.key, $0.weight] }).reduce(0) { $0 + $1[1] }
        let byteCapacity = totalBytes / 5
        rows.append(Row(workload: "zipf 1.1, 704 keys 45 KiB-6.5 MiB", capacity: "20 % of bytes (\(byteCapacity >> 20) MiB)",
                        results: Simulation.compare(sized, capacity: byteCapacity, doorkeeper: doorkeeper)))
        return rows
    }

    /// The rows as a text table: hit rates, and the adaptive policy against LRU and the optimum.
    package static func table(_ rows: [Row]) -> String {
        guard let first = rows.first else { return "" }
        let names = first.results.map(\.policy)
        var lines = ["workload".padded(36) + "capacity".padded(30) + names.map { $0.padded(21) }.joined()
                     + "adaptive/optimum  adaptive/optimum-cold  adaptive-lru"]
        for row in rows {
            var line = row.workload.padded(36) + row.capacity.padded(30)
            for result in row.results {
                var cell = percent(result.hitRate)
                if result.nonScanAccesses != result.accesses { cell += " (\(percent(result.nonScanHitRate)))" }
                line += cell.padded(21)
            }
            if let adaptive = row.result("adaptive"), let optimum = row.result("optimum"), let lru = row.result("lru") {
                line += percent(optimum.hitRate > 0 ? adaptive.hitRate / optimum.hitRate : 0).padded(18)
                if let cold = row.result("optimum-cold") {
                    line += percent(cold.hitRate > 0 ? adaptive.hitRate / cold.hitRate : 0).padded(22)
                }
                line += points(adaptive.hitRate - lru.hitRate)
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// `12.3 %`.
    package static func percent(_ value: Double) -> String { fixed(value * 100, 1) + " %" }
    /// `+4.2 pt`.
    package static func points(_ value: Double) -> String { (value >= 0 ? "+" : "") + fixed(value * 100, 1) + " pt" }

    /// `value` with `digits` decimals.
    package static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int(scaled / scale), fraction = Int(scaled) - whole * Int(scale)
        var text = (value < 0 && scaled > 0 ? "-" : "") + String(whole)
        if digits > 0 {
            let digitsText = String(fraction)
            text += "." + String(repeating: "0", count: digits - digitsText.count) + digitsText
        }
        return text
    }
}

extension String {
    fileprivate func padded(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}

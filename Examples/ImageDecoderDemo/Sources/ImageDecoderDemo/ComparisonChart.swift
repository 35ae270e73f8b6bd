/// A hand-written SVG chart of a comparison: throughput over time above, resident memory over
/// time below, one polyline per cache, the memory limit as a dashed line, and a cross where a
/// run was OOM-killed.
struct ComparisonChart {
    var title: String
    var subtitle: String
    var footnote: String
    var outcomes: [ChildOutcome]
    /// The memory limit in MiB, drawn in the memory panel; nil for none.
    var memoryLimitMiB: Double?

    static let colors: [CacheKind: String] = [
        .volatile: "#1b9e77", .nscache: "#d95f02", .nscacheTuned: "#7570b3", .none: "#777777", .volatileLRU: "#66a61e",
    ]

    private let width = 1120.0
    private let panelHeight = 260.0
    private let left = 70.0, right = 230.0, top = 86.0, gap = 70.0, bottom = 66.0

    /// Accesses per second between consecutive samples, at the later sample's time.
    static func throughput(_ samples: [WorkloadSample]) -> [(Double, Double)] {
        var points: [(Double, Double)] = []
        for (previous, current) in zip(samples, samples.dropFirst()) where current.seconds > previous.seconds {
            points.append((current.seconds, Double(current.accesses - previous.accesses) / (current.seconds - previous.seconds)))
        }
        return points
    }

    /// The SVG document.
    var svg: String {
        let height = top + 2 * panelHeight + gap + bottom
        let maxTime = max(1, outcomes.flatMap(\.samples).map(\.seconds).max() ?? 1)
        let rates = outcomes.map { Self.throughput($0.samples) }
        let maxRate = niceCeiling(max(1, rates.flatMap { $0.map(\.1) }.max() ?? 1))
        let maxMemory = niceCeiling(max(memoryLimitMiB ?? 0, outcomes.flatMap(\.samples).map(\.anonymousMiB).max() ?? 1) * 1.05)

        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="26" font-size="17" font-weight="bold">\(escape(title))</text>
            <text x="\(left)" y="46" fill="#444">\(escape(subtitle))</text>
            <text x="\(left)" y="\(Int(height) - 10)" fill="#444" font-size="11">\(escape(footnote))</text>

            """
        let panels: [(String, Double, Double)] = [
            ("accesses per second", top, maxRate),
            ("memory, MiB: solid = anonymous RSS (charged to the cgroup); dashed = RSS - LazyFree (what the kernel may not take back)", top + panelHeight + gap, maxMemory),
        ]
        for (index, (label, y0, maxValue)) in panels.enumerated() {
            out += axes(label: label, y0: y0, maxTime: maxTime, maxValue: maxValue)
            if index == 1, let memoryLimitMiB {
                let y = yPosition(memoryLimitMiB, y0: y0, maxValue: maxValue)
                out += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(width - right))\" y2=\"\(f(y))\" stroke=\"#c00\" stroke-dasharray=\"6 4\"/>\n"
                out += "<text x=\"\(f(width - right - 4))\" y=\"\(f(y - 5))\" text-anchor=\"end\" fill=\"#c00\">limit \(fixed(memoryLimitMiB, 0)) MiB</text>\n"
            }
            for (position, outcome) in outcomes.enumerated() {
                let points: [(Double, Double)] = index == 0 ? rates[position] : outcome.samples.map { ($0.seconds, $0.anonymousMiB) }
                guard !points.isEmpty else { continue }
                let color = Self.colors[outcome.cache] ?? "#000"
                if index == 1 && outcome.samples.contains(where: { $0.lazyFreeMiB > 0.5 }) {
                    let pinned = outcome.samples.map {
                        "\(f(xPosition($0.seconds, maxTime: maxTime))),\(f(yPosition(max(0, $0.anonymousMiB - $0.lazyFreeMiB), y0: y0, maxValue: maxValue)))"
                    }
                    out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" stroke-dasharray=\"5 4\" points=\"\(pinned.joined(separator: " "))\"/>\n"
                }
                let coordinates = points.map { "\(f(xPosition($0.0, maxTime: maxTime))),\(f(yPosition($0.1, y0: y0, maxValue: maxValue)))" }
                out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" stroke-linejoin=\"round\" points=\"\(coordinates.joined(separator: " "))\"/>\n"
                if outcome.oom, let last = points.last {
                    let x = xPosition(last.0, maxTime: maxTime), y = yPosition(last.1, y0: y0, maxValue: maxValue)
                    out += "<path d=\"M\(f(x - 6)) \(f(y - 6)) L\(f(x + 6)) \(f(y + 6)) M\(f(x - 6)) \(f(y + 6)) L\(f(x + 6)) \(f(y - 6))\" stroke=\"\(color)\" stroke-width=\"3\"/>\n"
                    out += "<text x=\"\(f(x + 8))\" y=\"\(f(y - 8))\" fill=\"\(color)\" font-weight=\"bold\">OOM-killed</text>\n"
                }
            }
        }
        // Legend.
        var legendY = top + 10
        let legendX = width - right + 18
        for outcome in outcomes {
            let color = Self.colors[outcome.cache] ?? "#000"
            out += "<line x1=\"\(f(legendX))\" y1=\"\(f(legendY - 4))\" x2=\"\(f(legendX + 22))\" y2=\"\(f(legendY - 4))\" stroke=\"\(color)\" stroke-width=\"3\"/>\n"
            out += "<text x=\"\(f(legendX + 28))\" y=\"\(f(legendY))\" font-weight=\"bold\">\(escape(outcome.cache.rawValue))</text>\n"
            out += "<text x=\"\(f(legendX + 28))\" y=\"\(f(legendY + 15))\" fill=\"#444\">\(fixed(outcome.accessesPerSecond, 0))/s, \(outcome.ending)</text>\n"
            out += "<text x=\"\(f(legendX + 28))\" y=\"\(f(legendY + 30))\" fill=\"#444\">hits \(fixed(outcome.hitRate * 100, 1)) %, peak \(fixed(outcome.peakMiB, 0)) MiB</text>\n"
            legendY += 52
        }
        out += "</svg>\n"
        return out
    }

    private func axes(label: String, y0: Double, maxTime: Double, maxValue: Double) -> String {
        let x1 = width - right
        let y1 = y0 + panelHeight
        var out = "<text x=\"\(f(left))\" y=\"\(f(y0 - 10))\" font-weight=\"bold\">\(escape(label))</text>\n"
        out += "<rect x=\"\(f(left))\" y=\"\(f(y0))\" width=\"\(f(x1 - left))\" height=\"\(f(panelHeight))\" fill=\"none\" stroke=\"#999\"/>\n"
        for step in 0...4 {
            let value = maxValue * Double(step) / 4
            let y = yPosition(value, y0: y0, maxValue: maxValue)
            if step > 0 && step < 4 {
                out += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(x1))\" y2=\"\(f(y))\" stroke=\"#eee\"/>\n"
            }
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\" fill=\"#444\">\(fixed(value, 0))</text>\n"
        }
        let timeStep = niceCeiling(maxTime / 8, factors: [1, 2, 5, 10])
        var time = 0.0
        while time <= maxTime + 1e-9 {
            let x = xPosition(time, maxTime: maxTime)
            out += "<text x=\"\(f(x))\" y=\"\(f(y1 + 16))\" text-anchor=\"middle\" fill=\"#444\">\(fixed(time, timeStep < 1 ? 1 : 0))</text>\n"
            time += timeStep
        }
        out += "<text x=\"\(f((left + x1) / 2))\" y=\"\(f(y1 + 32))\" text-anchor=\"middle\" fill=\"#444\">seconds</text>\n"
        return out
    }

    private func xPosition(_ time: Double, maxTime: Double) -> Double {
        left + (width - right - left) * time / maxTime
    }

    private func yPosition(_ value: Double, y0: Double, maxValue: Double) -> Double {
        y0 + panelHeight - panelHeight * min(value, maxValue) / maxValue
    }

    private func f(_ value: Double) -> String { fixed(value, 1) }

    /// The smallest of `factors` times a power of ten that is at least `value`.
    private func niceCeiling(_ value: Double, factors: [Double] = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) -> Double {
        var magnitude = 1.0
        while magnitude * 10 <= value { magnitude *= 10 }
        while magnitude > value && magnitude > 1e-6 { magnitude /= 10 }
        for factor in factors where factor * magnitude >= value { return factor * magnitude }
        return 10 * magnitude
    }

    private func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }
}

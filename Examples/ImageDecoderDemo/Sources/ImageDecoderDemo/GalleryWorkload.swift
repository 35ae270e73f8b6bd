/// One sample of a running workload, emitted every half second as a `SAMPLE` line.
struct WorkloadSample: Sendable, Equatable {
    var seconds: Double
    var accesses: Int
    var hits: Int
    var regenerations: Int
    /// VmRSS: includes shared libraries.
    var residentMiB: Double
    /// RssAnon: the process's own memory, lazily freed pages included.
    var anonymousMiB: Double
    /// LazyFree: pages the kernel may take back without asking.
    var lazyFreeMiB: Double
    var cacheMiB: Double
    /// CPU seconds of the process (user + system) since the workload started.
    var cpuSeconds: Double = 0
    /// Seconds spent decoding since the workload started.
    var decodeSeconds: Double = 0

    /// `SAMPLE t=1.00 accesses=… hits=… regenerations=… rss_mib=… anon_mib=… lazyfree_mib=… cache_mib=…`
    var line: String {
        "SAMPLE t=\(fixed(seconds, 2)) accesses=\(accesses) hits=\(hits) regenerations=\(regenerations)"
            + " rss_mib=\(fixed(residentMiB, 1)) anon_mib=\(fixed(anonymousMiB, 1)) lazyfree_mib=\(fixed(lazyFreeMiB, 1)) cache_mib=\(fixed(cacheMiB, 1))"
            + " cpu=\(fixed(cpuSeconds, 2)) decode_s=\(fixed(decodeSeconds, 2))"
    }

    /// Parses a `SAMPLE` line; nil for any other line.
    init?(line: Substring) {
        guard line.hasPrefix("SAMPLE ") else { return nil }
        let fields = KeyValueLine(line)
        guard let t = fields.double("t"), let accesses = fields.int("accesses") else { return nil }
        self.init(
            seconds: t, accesses: accesses, hits: fields.int("hits") ?? 0, regenerations: fields.int("regenerations") ?? 0,
            residentMiB: fields.double("rss_mib") ?? 0, anonymousMiB: fields.double("anon_mib") ?? 0, lazyFreeMiB: fields.double("lazyfree_mib") ?? 0,
            cacheMiB: fields.double("cache_mib") ?? 0)
        cpuSeconds = fields.double("cpu") ?? 0
        decodeSeconds = fields.double("decode_s") ?? 0
    }

    init(
        seconds: Double, accesses: Int, hits: Int, regenerations: Int, residentMiB: Double, anonymousMiB: Double,
        lazyFreeMiB: Double, cacheMiB: Double
    ) {
        self.seconds = seconds
        self.accesses = accesses
        self.hits = hits
        self.regenerations = regenerations
        self.residentMiB = residentMiB
        self.anonymousMiB = anonymousMiB
        self.lazyFreeMiB = lazyFreeMiB
        self.cacheMiB = cacheMiB
    }
}

/// `key=value` fields of a SAMPLE or RESULT line.
struct KeyValueLine {
    var values: [Substring: Substring] = [:]

    init(_ line: Substring) {
        for field in line.split(separator: " ") {
            guard let equals = field.firstIndex(of: "=") else { continue }
            values[field[..<equals]] = field[field.index(after: equals)...]
        }
    }

    func int(_ key: Substring) -> Int? { values[key].flatMap { Int($0) } }
    func double(_ key: Substring) -> Double? { values[key].flatMap { Double($0) } }
    func string(_ key: Substring) -> String? { values[key].map(String.init) }
}

/// What a finished workload did.
struct WorkloadReport: Sendable {
    var cache: CacheKind
    var configurationNote: String
    var seconds: Double
    var accesses: Int
    var figures: CacheFigures
    var verificationFailures: Int
    var cpuSeconds: Double
    var decodeSeconds: Double
    var peakResidentBytes: Int
    var samples: [WorkloadSample]

    var accessesPerSecond: Double { seconds > 0 ? Double(accesses) / seconds : 0 }
    var hitRate: Double { accesses > 0 ? Double(figures.hits) / Double(accesses) : 0 }

    /// The last line of the output.
    func resultLine(oom: Bool) -> String {
        "RESULT cache=\(cache.rawValue) accesses=\(accesses) hits=\(figures.hits) regenerations=\(figures.regenerations)"
            + " seconds=\(fixed(seconds, 2)) oom=\(oom)"
    }

    /// The final table, one `name  value` row per line.
    var tableLines: [String] {
        let rows: [(String, String)] = [
            ("cache", "\(cache.rawValue): \(configurationNote)"),
            ("duration", "\(fixed(seconds, 2)) s"),
            ("accesses", "\(accesses) (\(fixed(accessesPerSecond, 0)) per second)"),
            ("hits", "\(figures.hits) (\(fixed(hitRate * 100, 1)) %)"),
            ("regenerations", "\(figures.regenerations) (decodes), \(fixed(decodeSeconds, 2)) s decoding"),
            ("CPU time", "\(fixed(cpuSeconds, 2)) s (user + system), \(fixed(cpuSeconds > 0 ? Double(accesses) / cpuSeconds : 0, 0)) accesses per CPU second"),
            ("drops detected", "\(figures.drops)"),
            ("evictions", "\(figures.evictions)"),
            ("cache resident", "\(mebibytes(figures.residentBytes)) MiB at the end"),
            ("peak RSS", "\(mebibytes(peakResidentBytes)) MiB (VmHWM, counts lazily freed pages)"),
            ("verify failures", "\(verificationFailures)"),
        ]
        return rows.map { pad($0.0, 16, right: true) + $0.1 }
    }
}

/// The access loop: draw an item from the Zipf sampler, get it from the cache (decoding on a
/// miss), check its bytes, repeat until the time is up. Every half second it emits a SAMPLE line
/// (half, not one: a run that is OOM-killed within its first second still leaves figures).
struct GalleryWorkload {
    var gallery: Gallery
    var sampler: ZipfSampler
    var duration: Double
    /// Where to record every access (`--trace`).
    var trace: AccessTrace? = nil

    /// Runs the loop.
    /// - Parameters:
    ///   - cache: The cache.
    ///   - progress: The progress line, if on a terminal.
    ///   - emitSamples: Whether to print SAMPLE lines.
    /// - Returns: The report.
    /// - Throws: A decode or cache error (ends the run).
    mutating func run(cache: any GalleryCache, progress: ProgressLine?, emitSamples: Bool = true) throws -> WorkloadReport {
        // The checksum of every item the first time it is decoded; later accesses must match.
        var expected = [UInt64?](repeating: nil, count: gallery.items.count)
        var failures = 0
        var accesses = 0
        var samples: [WorkloadSample] = []
        let clock = ContinuousClock()
        let cpuAtStart = ProcessMemory.cpuSeconds()
        let decodeAtStart = DecodeMeter.seconds
        let start = clock.now
        let sampleInterval = 0.5
        var nextSample = sampleInterval
        var nextProgress = 0.25
        var window: [(Double, Int)] = [(0, 0)]  // (time, accesses) for a one-second rate
        var elapsed = 0.0
        func seconds(_ duration: Duration) -> Double {
            Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
        }
        func sample(at time: Double) -> WorkloadSample {
            let figures = cache.figures()
            var sample = WorkloadSample(
                seconds: time, accesses: accesses, hits: figures.hits, regenerations: figures.regenerations,
                residentMiB: Double(ProcessMemory.residentBytes()) / 1_048_576,
                anonymousMiB: Double(ProcessMemory.anonymousResidentBytes()) / 1_048_576,
                lazyFreeMiB: Double(ProcessMemory.lazyFreeBytes()) / 1_048_576,
                cacheMiB: Double(figures.residentBytes) / 1_048_576)
            sample.cpuSeconds = ProcessMemory.cpuSeconds() - cpuAtStart
            sample.decodeSeconds = DecodeMeter.seconds - decodeAtStart
            return sample
        }
        if emitSamples { Output.line(sample(at: 0).line) }
        while elapsed < duration {
            let item = gallery.items[sampler.next()]
            let checksum = try cache.access(item)
            accesses += 1
            trace?.record(index: item.index, byteCount: item.byteCount)
            if let checksum, expected[item.index] == nil {
                expected[item.index] = checksum
            } else if checksum == nil || checksum != expected[item.index] {
                failures += 1
                if failures <= 5 {
                    Output.error("image-decoder-demo: item \(item.index) (\(item.label)) came back with different bytes")
                }
            }
            elapsed = seconds(start.duration(to: clock.now))
            if elapsed >= nextSample {
                let current = sample(at: elapsed)
                samples.append(current)
                if emitSamples { Output.line(current.line) }
                nextSample += sampleInterval
            }
            if let progress, elapsed >= nextProgress {
                window.append((elapsed, accesses))
                while window.count > 2 && elapsed - window[1].0 >= 1 { window.removeFirst() }
                let rate = Double(accesses - window[0].1) / max(0.001, elapsed - window[0].0)
                let figures = cache.figures()
                progress.update(
                    elapsed: elapsed, total: duration, accessesPerSecond: rate,
                    hitRate: accesses > 0 ? Double(figures.hits) / Double(accesses) : 0, figures: figures)
                nextProgress = elapsed + 0.25
            }
        }
        progress?.clear()
        let final = sample(at: elapsed)
        if let trace {
            // The capacity to replay the trace at: what the cache held at the end.
            trace.comment("resident_bytes=\(cache.figures().residentBytes) accesses=\(accesses)")
            trace.flush()
        }
        if samples.last?.seconds != final.seconds {
            samples.append(final)
            if emitSamples { Output.line(final.line) }
        }
        return WorkloadReport(
            cache: cache.kind, configurationNote: cache.configurationNote, seconds: elapsed, accesses: accesses,
            figures: cache.figures(), verificationFailures: failures,
            cpuSeconds: final.cpuSeconds, decodeSeconds: final.decodeSeconds,
            peakResidentBytes: ProcessMemory.peakResidentBytes(), samples: samples)
    }
}

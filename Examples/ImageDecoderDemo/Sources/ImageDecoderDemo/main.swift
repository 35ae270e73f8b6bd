import Glibc
import VolatileCacheTesting

// image-decoder-demo: the README's main command. See DemoOptions.usage.

let options: DemoOptions
do {
    options = try DemoOptions.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    Output.error("image-decoder-demo: \(error)")
    exit(2)
}
if options.showHelp {
    Output.line(DemoOptions.usage)
    exit(0)
}
if options.isNeighbour {
    exit(NeighbourBurst.runNeighbourProcess(options.neighbour))
}

/// Runs the workload in this process and prints the RESULT line (inside the sandbox, the
/// parent replaces it with one that carries the OOM verdict).
func runHere(_ options: DemoOptions) -> Int32 {
    do {
        let report = try DemoRun.run(options: options)
        Output.line(report.resultLine(oom: false))
        return report.verificationFailures == 0 ? 0 : 1
    } catch {
        Output.error("image-decoder-demo: \(error)")
        return 1
    }
}

if options.inSandbox || (options.noSandbox && !options.compare) {
    exit(runHere(options))
}

let photos: String
let gallery: Gallery
do {
    photos = try PhotoLibrary.locate(explicit: options.photosPath)
    gallery = try DemoRun.makeGallery(options: { var o = options; o.photosPath = photos; return o }())
} catch {
    Output.error("image-decoder-demo: \(error)")
    exit(1)
}

// Swap and cgroups this run sets up are undone on every way out (see SwapSetup).
let sandbox = Comparison.sandboxOrNotice(options)
let swapSetup: SwapSetup
do {
    swapSetup = try SwapSetup(mode: options.swap, sandboxParent: sandbox?.parentPath)
} catch {
    Output.error("image-decoder-demo: \(error)")
    exit(1)
}
func exitUndoingSetup(_ status: Int32) -> Never {
    swapSetup.tearDown()
    exit(status)
}

if options.compare {
    exitUndoingSetup(await Comparison.run(options: options, photos: photos, gallery: gallery, sandbox: sandbox, swap: swapSetup.description))
}

// One cache, in a child process inside a memory cgroup (or here, with a notice, when there
// is no sandbox).
guard let sandbox else {
    exitUndoingSetup(runHere(options))
}
Output.line(DemoRun.galleryLine(gallery, options: options))
do {
    let outcome = try await SandboxedRun.run(cache: options.cache, options: options, photos: photos, sandbox: sandbox)
    let showSamples = isatty(1) == 0
    for sample in outcome.samples where showSamples { Output.line(sample.line) }
    for line in outcome.otherLines where !line.hasPrefix("gallery: ") { Output.line(line) }
    if !outcome.standardError.isEmpty { Output.error(outcome.standardError.hasSuffix("\n") ? String(outcome.standardError.dropLast()) : outcome.standardError) }
    if let result = outcome.sandbox {
        let peak = result.peakMemoryBytes.map { mebibytes($0) + " MiB" } ?? "unknown"
        Output.line(pad("sandbox", 16, right: true) + "limit \(options.memoryLimitMiB) MiB, cgroup peak \(peak), "
            + "OOM kills \(result.oomKillCount.map(String.init) ?? "?"), \(outcome.ending) (\(result.termination))")
    }
    Output.line(outcome.resultLine)
    exitUndoingSetup(outcome.finished || outcome.oom ? (outcome.verificationFailures == 0 ? 0 : 1) : 1)
} catch {
    Output.error("image-decoder-demo: cannot run the workload in the sandbox: \(error)")
    exitUndoingSetup(1)
}

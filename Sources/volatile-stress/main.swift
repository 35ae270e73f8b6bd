// volatile-stress: hammers a VolatileCache (or, as a baseline, ordinary heap arrays) from
// several threads, verifying every byte of every access, optionally with injected drops and
// inside a memory cgroup whose limit can be halved mid-run. See StressOptions.usage.

import Glibc

let options: StressOptions
do {
    options = try StressOptions.parse(Array(CommandLine.arguments.dropFirst()))
} catch .helpRequested {
    printLine(StressOptions.usage)
    exit(0)
} catch {
    printError("\(error)")
    exit(64)  // EX_USAGE
}

if options.memoryLimitMiB != nil {
    exit(await SandboxRerun(options: options).run())
} else {
    exit(StressRun(options: options).run())
}

import Glibc
import ThumbnailServerCore

// thumbnail-server: an HTTP thumbnail server on VolatileCache. See ServerOptions.usage.
exit(await ServerMain.run(Array(CommandLine.arguments.dropFirst())))

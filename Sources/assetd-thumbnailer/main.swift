// assetd-thumbnailer: makes one JPEG thumbnail and exits. It is where the untrusted
// parsers (libvips' loaders, poppler, libheif, libtiff, ffmpeg) run, away from assetd's
// secrets: it reads no settings file and no environment, and holds nothing but its
// connection (standard input and output) and the source descriptor assetd sends on it.
// See Sources/Thumbnails/DecoderProtocol.swift for the wire, and docs/OPERATIONS.md.
import CSystem
import Glibc
import Logging
import Thumbnails

// Before anything else: execve can never grant privileges again (to it or to ffmpeg),
// and no core file is ever written. (No parent-death signal: Linux sends it when the
// spawning *thread* exits, and assetd's Dispatch threads come and go; the connection
// closing when assetd is gone ends a waiting decoder instead.)
_ = assetd_system_set_no_new_privs()
_ = assetd_system_limit(ASSETD_LIMIT_CORE_BYTES, 0)
signal(SIGPIPE, SIG_IGN)
// Log lines (libvips' warnings, through Vips.log) go to standard error: assetd's own, when
// it spawns the decoder, or the unit's journal. Never to standard output, the connection.
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .info
    return handler
}
exit(DecoderServer.serve(connection: 0, output: 1))

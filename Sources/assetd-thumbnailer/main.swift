// assetd-thumbnailer: the decoder zygote. It loads libvips once and forks a fresh child
// for each connection on its listening socket (standard input); the child makes one JPEG
// thumbnail and exits. It is where the untrusted parsers (libvips' loaders, poppler,
// libheif, libtiff, ffmpeg) run, away from assetd's secrets: it reads no settings file and
// no environment, and holds nothing but its socket. See Sources/Thumbnails/DecoderZygote.swift
// and DecoderProtocol.swift, and docs/OPERATIONS.md.
import CSystem
import Glibc
import Logging
import Thumbnails

let usage = """
    assetd-thumbnailer: assetd's sandboxed media decoder (the decoder zygote).

    It loads libvips once, then forks a fresh child for each connection on its listening
    unix socket; the child decodes one file (libvips, poppler, libheif, ffmpeg), answers
    its thumbnail (a JPEG) and its media facts, and exits. The untrusted parsers run
    there, away from assetd's secrets.

    Not run by hand. systemd starts it from assetd-thumbnailer.socket with that listening
    unix socket on standard input (StandardInput=socket; assetd.service points
    ASSETD_THUMBNAILER_SOCKET at it); without that setting, assetd runs it as its own child
    with a socket of its own on standard input.

    Settings: none of its own. It reads no settings file and no environment: assetd sends
    the limits with each task, from its settings ASSETD_THUMBNAIL_SIZE, _QUALITY,
    _MAX_PIXELS, _MAX_DECODE_BYTES, _TIMEOUT, ASSETD_THUMBNAILER_MAX_MEMORY and
    ASSETD_KEEP_GPS (docs/CONFIGURATION.md, "Thumbnails"; the decoder process: docs/OPERATIONS.md).

    Usage: assetd-thumbnailer          (standard input: a listening unix socket)
           assetd-thumbnailer --help   (this text)
    Exit status 64: standard input is no listening socket.

    """

// --help (or -h), and nothing else: the usage, before any other work.
if CommandLine.arguments.dropFirst().contains(where: { $0 == "--help" || $0 == "-h" }) {
    print(usage, terminator: "")
    exit(0)
}

// Before anything else: execve can never grant privileges again (to it, its children or
// ffmpeg), no core file is ever written, and no process of its user may read its memory.
_ = assetd_system_set_no_new_privs()
_ = assetd_system_limit(ASSETD_LIMIT_CORE_BYTES, 0)
_ = assetd_system_set_dumpable(0)
signal(SIGPIPE, SIG_IGN)
// Decoding yields to serving: the zygote and every child run 10 nicer than they started,
// as the decoders did when assetd's niced task threads spawned them (assetd spawns the
// zygote from a thread of normal priority). Under systemd the unit's Nice=10 does it: its
// system-call filter refuses setpriority, and this call fails harmlessly.
errno = 0
_ = nice(10)
// Log lines (libvips' warnings, through Vips.log) go to standard error: assetd's own, when
// it runs the zygote, or the unit's journal. Never to standard output.
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .info
    return handler
}
let logger = Logger(label: "assetd.thumbnailer")

// Standard input is the listening socket: systemd's (assetd-thumbnailer.socket, Accept=no,
// StandardInput=socket) or assetd's own.
var listening: Int32 = 0
var size = socklen_t(MemoryLayout<Int32>.size)
guard getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) == 0, listening == 1 else {
    logger.critical("assetd-thumbnailer: standard input must be a listening unix socket (assetd-thumbnailer.socket, or assetd's)")
    exit(64)
}
// Descriptor 3, when it is a pipe: assetd's lifeline (assetd holds the writing end, so the
// zygote ends with assetd). Under systemd it is the same listening socket, or nothing.
var info = stat()
let lifeline: Int32? = fstat(3, &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO ? 3 : nil
exit(DecoderZygote.run(listener: 0, lifeline: lifeline, logger: logger))

import Glibc

/// The `posix_spawnattr_t` every child of assetd's is spawned with (the decoder zygote,
/// ffmpeg and ffprobe): default dispositions for every signal and an empty signal mask.
/// assetd's own are not the child's: it ignores SIGPIPE and its threads block signals,
/// and a child that inherited them would not die of a broken pipe, or could not be
/// stopped by the signals it expects.
enum SpawnAttributes {
    /// Calls `body` with the attributes, destroyed after it returns.
    static func withDefaultSignals<T>(_ body: (inout posix_spawnattr_t) -> T) -> T {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        return body(&attributes)
    }
}

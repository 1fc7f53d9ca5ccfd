import Testing
@testable import FastCGIServer

/// glibc's arena cap: an arena a worker at the default thread count (bench/presign.sh's
/// figure depends on it), bounded for many threads so retained memory does not grow with them.
struct ArenaTests {
    @Test func theDefaultThreadsGetAnArenaEachOnAnyHost() {
        #expect(FastCGIServer.arenas(threads: 16, cores: 1) == 17)
        #expect(FastCGIServer.arenas(threads: 16, cores: 2) == 17)
        #expect(FastCGIServer.arenas(threads: 4, cores: 2) == 5)
    }

    @Test func manyThreadsAreCappedByTheCoresAndAt64() {
        #expect(FastCGIServer.arenas(threads: 512, cores: 2) == 17)
        #expect(FastCGIServer.arenas(threads: 512, cores: 4) == 32)
        #expect(FastCGIServer.arenas(threads: 512, cores: 64) == 64)
        #expect(FastCGIServer.arenas(threads: 40, cores: 64) == 41)
    }
}

import Foundation
public import Glibc
import Synchronization

/// Where the unit tests put their SQLite files and scratch directories: new paths in the temporary directory,
/// each removed with its -wal, -shm and .lock files when the test process exits. Not at
/// the end of a test: a store stays open until then, and a test may open the same file
/// again to see what an earlier store wrote. (A run used to leave thousands of
/// /tmp/assetd-<UUID>.sqlite behind.)
public enum TestFiles {
    private static let paths = Mutex<[String]>([])
    private static let removal: Void = { atexit { TestFiles.removeAll() } }()

    /// A new path, `<temporary directory>/<prefix>-<UUID>.sqlite`, nothing there yet.
    public static func sqlitePath(_ prefix: String = "assetd") -> String {
        _ = removal
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString).sqlite").path
        paths.withLock { $0.append(path) }
        return path
    }

    /// The address of a path-named unix socket (a path longer than sun_path is cut short).
    public static func unixAddress(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        return address
    }

    /// A unix socket of `type` (SOCK_STREAM, SOCK_DGRAM, with flags) bound at `path`, or -1.
    public static func boundUnixSocket(at path: String, type: Int32) -> Int32 {
        let descriptor = socket(AF_UNIX, type, 0)
        guard descriptor >= 0 else { return -1 }
        var address = unixAddress(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            close(descriptor)
            return -1
        }
        return descriptor
    }

    /// A new, empty directory `<temporary directory>/<prefix>-<UUID>` (a thumbnail
    /// worker's scratch, say), removed with what it holds when the test process exits.
    public static func scratchDirectory(_ prefix: String) throws -> String {
        _ = removal
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        directories.withLock { $0.append(path) }
        return path
    }

    private static let directories = Mutex<[String]>([])

    static func removeAll() {
        for path in paths.withLock({ $0 }) {
            for suffix in ["", "-wal", "-shm", "-journal", ".lock"] { unlink(path + suffix) }
        }
        for path in directories.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }
}

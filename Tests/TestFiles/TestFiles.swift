import Foundation
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

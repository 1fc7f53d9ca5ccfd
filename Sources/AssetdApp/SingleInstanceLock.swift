import AssetStore
import Foundation
import Glibc

/// One assetd per SQLite file: an exclusive `flock` on `<database>.lock`, held for the
/// life of the process (the kernel lets go when it exits, even after kill -9).
enum SingleInstanceLock {
    /// The descriptor stays open on purpose: closing it would release the lock.
    nonisolated(unsafe) private static var held: Int32 = -1

    static func acquire(beside databasePath: String) throws {
        let path = databasePath + ".lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ConfigurationError(description: "cannot open \(path) (ASSETD_DATABASE's lock file): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw ConfigurationError(description: """
                another assetd already serves the SQLite database \(databasePath) (it holds \(path)); \
                SQLite is for one process on one host: run several on PostgreSQL (ASSETD_DATABASE=postgres://...)
                """)
        }
        held = descriptor
    }
}

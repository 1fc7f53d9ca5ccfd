import Foundation
import Glibc
import S3Client
@testable import AssetdApp

/// The thumbnail tasks' calls: a GET writes the object's bytes (none unless a test gave
/// some), a PUT records the key and the bytes. Failures come from `fail(_:with:)` like the other calls.
extension FakeObjectStore {
    func getObject(key: String, toFile descriptor: Int32, expectedSize: Int) throws -> Int {
        let failure: S3Error? = state.withLock {
            $0.calls.append("getObject")
            return $0.failNext.removeValue(forKey: "getObject")
        }
        if let failure { throw failure }
        guard state.withLock({ $0.objects[key] }) != nil else {
            throw S3Error.service(.noSuchKey, status: 404, message: "", requestID: nil)
        }
        // The object's bytes when a test gave some (else none, as before).
        let bytes = state.withLock { $0.contents[key] } ?? []
        return bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }

    func putObject(key: String, bytes: [UInt8], contentType: String, metadata: [String: String], cacheControl: String?) throws -> String {
        let failure: S3Error? = state.withLock {
            $0.calls.append("putObject")
            return $0.failNext.removeValue(forKey: "putObject")
        }
        if let failure { throw failure }
        // `during("putObject:before")`: runs before the PUT lands (a PUT still in flight).
        if let body = state.withLock({ $0.during.removeValue(forKey: "putObject:before") }) { body() }
        state.withLock {
            $0.objects[key] = bytes.count
            $0.contents[key] = bytes
        }
        return "\"thumbnail\""
    }
}

import Foundation
import Glibc
import S3Client
@testable import AssetdApp

/// The thumbnail tasks' calls: a GET writes the object's recorded size of zero bytes,
/// a PUT records the key. Failures come from `fail(_:with:)` like the other calls.
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
        return 0
    }

    func putObject(key: String, bytes: [UInt8], contentType: String, metadata: [String: String], cacheControl: String?) throws -> String {
        let failure: S3Error? = state.withLock {
            $0.calls.append("putObject")
            return $0.failNext.removeValue(forKey: "putObject")
        }
        if let failure { throw failure }
        state.withLock { $0.objects[key] = bytes.count }
        return "\"thumbnail\""
    }
}

import MediaInfo
import AssetStore
import Dispatch
import Foundation
import Glibc
import JSON
import Logging
import Media
import Synchronization
import Testing
import TestFiles
import Thumbnails
@testable import AssetdApp

/// Issue 17, "an old version's thumbnail can replace the new one's": two versions
/// uploaded back to back, 2 thumbnail workers, and a fake decoder whose JPEG names the
/// version it was made from (the source's last byte), so the interleavings are forced.
@Suite(.serialized) struct ThumbnailVersionTests {
    /// A 1x1 PNG, then one byte after IEND that names the version (libmagic still says PNG).
    static func png(version: UInt8) -> [UInt8] {
        let hex = "89504e470d0a1a0a0000000d49484452000000010000000108020000009077"
            + "53de0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return bytes + [version]
    }

    /// Returns "JPEG" bytes ending with the source's version byte; blocks the decode of
    /// the version in `hold` until `release`.
    final class FakeDecoder: ThumbnailDecoding {
        let hold = Mutex<UInt8?>(nil)
        let entered = DispatchSemaphore(value: 0)
        let gate = DispatchSemaphore(value: 0)

        func thumbnail(ofFile descriptor: Int32, detectedType: String) throws(DecodeFailure) -> DecodedThumbnail {
            var info = stat()
            fstat(descriptor, &info)
            var last: UInt8 = 0
            _ = pread(descriptor, &last, 1, off_t(info.st_size - 1))
            if hold.withLock({ $0 }) == last {
                entered.signal()
                gate.wait()
            }
            return DecodedThumbnail(jpeg: [0xFF, 0xD8, 0xFF, last], facts: MediaMetadata(width: Int(last) + 1, height: 1))
        }
    }

    let routes: RouteTests
    let decoder = FakeDecoder()
    let worker: ThumbnailWorker
    let versions: VersionTests

    init() throws {
        let scratch = try TestFiles.scratchDirectory("assetd-thumbs")
        let decoder = decoder
        var made: ThumbnailWorker?
        routes = try RouteTests { records, store in
            let worker = ThumbnailWorker(records: records, objects: store, detector: try ContentDetector(), decoder: decoder,
                                         concurrency: 2, scratchDirectory: scratch, logger: Logger(label: "test"),
                                         backoff: { _ in .milliseconds(10) })
            made = worker
            return worker
        }
        worker = made!
        versions = VersionTests(routes: routes)
    }

    var thumbnailKey: (String) -> String { { "1/thumbnails/\($0).jpg" } }

    func storedVersion(_ id: String) -> UInt8? {
        routes.store.state.withLock { $0.contents[thumbnailKey(id)]?.last }
    }

    func thumbnailStatus(_ id: String) -> String? {
        versions.asset(id)["thumbnail"]?["status"]?.stringValue
    }

    func waitIdle() {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if worker.queue.counts == (0, 0) { return }
            usleep(5_000)
        }
    }

    func waitFor(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(5_000)
        }
        return condition()
    }

    /// Version 1's task is still decoding when version 2's stores its thumbnail: the older
    /// task must not store after it (compare-and-set before the PUT).
    @Test func anOlderTaskThatFinishesLastStoresNothing() throws {
        decoder.hold.withLock { $0 = 1 }
        let (status, _, id) = try versions.upload(type: "image/png", content: Self.png(version: 1))
        #expect(status == 200)
        decoder.entered.wait()
        let (second, answer, _) = try versions.upload(type: "image/png", assetID: id, content: Self.png(version: 2))
        #expect(second == 200, "\(answer)")
        #expect(waitFor(10) { thumbnailStatus(id) == "ready" })
        #expect(storedVersion(id) == 2)
        decoder.gate.signal()
        waitIdle()
        #expect(thumbnailStatus(id) == "ready")
        #expect(storedVersion(id) == 2, "version 1's JPEG replaced version 2's")
    }

    /// Version 1's PUT is in flight when version 2 arrives and its task runs: version 2's
    /// JPEG must be the one left, whichever PUT S3 finishes last.
    @Test func aPutInFlightDuringTheSwitchLeavesTheNewVersionsThumbnail() throws {
        let inPut = DispatchSemaphore(value: 0), putGate = DispatchSemaphore(value: 0)
        routes.store.during("putObject:before") {
            inPut.signal()
            putGate.wait()
        }
        let (status, _, id) = try versions.upload(type: "image/png", content: Self.png(version: 1))
        #expect(status == 200)
        inPut.wait()
        let (second, answer, _) = try versions.upload(type: "image/png", assetID: id, content: Self.png(version: 2))
        #expect(second == 200, "\(answer)")
        // Without the lock, version 2's task stores and records ready meanwhile; with it, it waits.
        _ = waitFor(1) { thumbnailStatus(id) == "ready" }
        putGate.signal()
        #expect(waitFor(10) { thumbnailStatus(id) == "ready" && worker.queue.counts == (0, 0) })
        waitIdle()
        #expect(thumbnailStatus(id) == "ready")
        #expect(storedVersion(id) == 2, "version 1's late PUT replaced version 2's thumbnail")
    }
}

extension VersionTests {
    init(routes: RouteTests) {
        self.routes = routes
    }
}

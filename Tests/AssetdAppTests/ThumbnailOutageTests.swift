import MediaInfo
import Foundation
import Logging
import Media
import Synchronization
import Testing
import TestFiles
import Thumbnails
@testable import AssetStore
@testable import AssetdApp

/// A decoder outage (its zygote down or restarting: DecodeFailure.unavailable) is not the
/// content's fault: a thumbnail task spends no attempt on it, waits a backoff that grows
/// with the outage, and is never failed for it. On SQLite, and on PostgreSQL when
/// ASSETD_TEST_POSTGRES_URL names a server (scripts/test's PostgreSQL pass runs this suite
/// beside the store tests).
@Suite(.serialized) struct ThumbnailOutageTests {
    enum Store: String, CustomTestStringConvertible, Sendable {
        case sqlite, postgres

        static let postgresURL = ProcessInfo.processInfo.environment["ASSETD_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
        static let all: [Store] = postgresURL == nil ? [.sqlite] : [.sqlite, .postgres]

        var testDescription: String { rawValue }

        /// A new, empty store: a file, or a schema of its own on the server.
        func open() throws -> any RecordStore & EventOutbox {
            switch self {
            case .sqlite:
                return try SQLiteRecordStore(path: TestFiles.sqlitePath("assetd-outage"))
            case .postgres:
                let url = try #require(Self.postgresURL)
                let schema = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
                try PGPool(url: url, settings: .init()).with { try $0.execute("CREATE SCHEMA \(schema)") }
                return try PostgresRecordStore(url: url + (url.contains("?") ? "&" : "?") + "options=-csearch_path%3D\(schema)")
            }
        }
    }

    /// Unavailable for its first `outage` calls, then a JPEG; counts the calls.
    final class OutageDecoder: ThumbnailDecoding {
        let outage: Mutex<Int>
        let calls = Mutex(0)

        init(outage: Int) { self.outage = Mutex(outage) }

        func thumbnail(ofFile descriptor: Int32, detectedType: String) throws(DecodeFailure) -> DecodedThumbnail {
            calls.withLock { $0 += 1 }
            let down = outage.withLock { left in
                guard left > 0 else { return false }
                left -= 1
                return true
            }
            if down { throw .unavailable("cannot reach the decoder at /run/assetd-thumbnailer/decoder.sock: Connection refused") }
            return DecodedThumbnail(jpeg: [0xFF, 0xD8, 0xFF, 0xD9], facts: nil)
        }
    }

    /// A ready PNG asset whose object is in `objects`, its thumbnail not yet queued.
    func readyAsset(_ records: any RecordStore, _ objects: FakeObjectStore, workspaceID: Int64 = 1) throws -> AssetRecord {
        let bytes = ThumbnailVersionTests.png(version: 1)
        let created = try records.createAsset(NewAsset(workspaceID: workspaceID, fileType: "image/png", fileExtension: "png", fileName: "a.png",
                                                       size: Int64(bytes.count)))
        objects.state.withLock {
            $0.objects[created.key] = bytes.count
            $0.contents[created.key] = bytes
        }
        return try #require(try records.markAssetReady(id: created.id, size: Int64(bytes.count), etag: "\"e1\"", sha256: nil,
                                                        thumbnail: .none))
    }

    func waitFor(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(5_000)
        }
        return try condition()
    }

    /// Twice as many unavailable answers as a task has attempts, then the decoder is back:
    /// the thumbnail is made on the first attempt the decoder took, with no thumbnail.failed
    /// event, and each put-back waited the backoff of the outage so far (1, 2, 3, ...).
    @Test(arguments: Store.all) func anUnavailableDecoderSpendsNoAttemptAndFailsNothing(_ store: Store) throws {
        let records = try store.open()
        let objects = FakeObjectStore()
        let outage = 2 * ThumbnailWorker.maxAttempts
        let decoder = OutageDecoder(outage: outage)
        let pauses = Mutex<[Int]>([])
        let metrics = Metrics()
        let worker = ThumbnailWorker(records: records, objects: objects, detector: try ContentDetector(), decoder: decoder,
                                     concurrency: 1, scratchDirectory: try TestFiles.scratchDirectory("assetd-outage"),
                                     logger: Logger(label: "test"), metrics: metrics, backoff: { n in
                                         pauses.withLock { $0.append(n) }
                                         return .milliseconds(5)
                                     })
        defer { worker.stop(waitingUpTo: .seconds(2)) }
        let asset = try readyAsset(records, objects)
        // After its asset.ready: the sink sees the thumbnail's events alone (claims keep an
        // asset's order, so an undelivered asset.ready would hide them).
        try records.activateEventSinks(["hook"], now: Date())
        #expect(worker.enqueue(asset) == .pending)
        #expect(try waitFor(20) { try records.thumbnailState(assetID: asset.id)?.status != .pending })
        #expect(try records.thumbnailState(assetID: asset.id) == ThumbnailState(status: .ready, reason: nil, attempts: 1))
        #expect(decoder.calls.withLock { $0 } == outage + 1)
        #expect(pauses.withLock { $0 } == Array(1...outage), "the backoff grows with the outage")
        #expect(objects.state.withLock { $0.contents["1/thumbnails/\(asset.id).jpg"] } == [0xFF, 0xD8, 0xFF, 0xD9])
        let events = try records.claimDeliveries(sink: "hook", limit: 50, now: Date(), leaseUntil: Date().addingTimeInterval(30))
        #expect(events.map(\.type) == [.thumbnailReady], "no thumbnail.failed")
        // The decoder answered: the next outage starts from the first backoff again.
        #expect(worker.decoderOutage.withLock { $0.unavailable == 0 && $0.until == nil })
        // What a sysadmin alerts on: the outage counted, no failure, the decoder up again.
        let text = String(decoding: metrics.render(), as: UTF8.self)
        for line in ["assetd_thumbnail_tasks_total{result=\"unavailable\"} \(outage)", "assetd_thumbnail_tasks_total{result=\"ready\"} 1",
                     "assetd_thumbnail_tasks_total{result=\"failed\"} 0", "assetd_thumbnail_tasks_total{result=\"retried\"} 0",
                     "assetd_decoder_up 1.0"] {
            #expect(text.split(separator: "\n").contains { $0 == line }, "\(line) in \(text)")
        }
    }

    /// Many tasks queued during an outage: one of them tries the decoder (and downloads its
    /// source) per pause, the others wait for the pause's end without a claim or a
    /// download; once the decoder is back, each is made on its first counted attempt.
    @Test(arguments: Store.all) func queuedTasksWaitOutTheOutageInsteadOfEachTryingTheDecoder(_ store: Store) throws {
        let records = try store.open()
        let objects = FakeObjectStore()
        let decoder = OutageDecoder(outage: 1_000)
        let metrics = Metrics()
        let worker = ThumbnailWorker(records: records, objects: objects, detector: try ContentDetector(), decoder: decoder,
                                     concurrency: 1, scratchDirectory: try TestFiles.scratchDirectory("assetd-outage"),
                                     logger: Logger(label: "test"), metrics: metrics, backoff: { _ in .milliseconds(200) })
        defer { worker.stop(waitingUpTo: .seconds(2)) }
        let assets = try (1...8).map { _ in try readyAsset(records, objects) }
        for asset in assets { worker.enqueue(asset) }
        Thread.sleep(forTimeInterval: 1.1)
        // About one try per 200 ms pause (6); one try per task and pause without the wait
        // would be 8 each 200 ms, about 45.
        let tries = decoder.calls.withLock { $0 }
        #expect(tries >= 2 && tries <= 12, "\(tries) tries")
        for asset in assets { #expect(try records.thumbnailState(assetID: asset.id)?.status == .pending, "none failed") }
        #expect(try records.pendingThumbnailCount() == assets.count)
        #expect(String(decoding: metrics.render(), as: UTF8.self).split(separator: "\n").contains("assetd_decoder_up 0.0"))
        decoder.outage.withLock { $0 = 0 }
        #expect(try waitFor(20) { try assets.allSatisfy { try records.thumbnailState(assetID: $0.id)?.status == .ready } })
        for asset in assets { #expect(try records.thumbnailState(assetID: asset.id)?.attempts == 1) }
        #expect(try records.pendingThumbnailCount() == 0)
    }
}

/// assetd_reconciler_last_pass_timestamp_seconds: 0 until this host finishes a pass, then its time.
@Suite struct ReconcilerMetricTests {
    @Test func aFinishedPassSetsItsTimestamp() throws {
        let routes = try RouteTests()
        let metrics = Metrics()
        func stamp() -> Double? {
            String(decoding: metrics.render(), as: UTF8.self).split(separator: "\n")
                .first { $0.hasPrefix("assetd_reconciler_last_pass_timestamp_seconds ") }
                .flatMap { Double($0.split(separator: " ")[1]) }
        }
        #expect(stamp() == 0)
        let before = Date().timeIntervalSince1970
        Reconciler(service: routes.app.service, interval: .seconds(60), metrics: metrics).pass(startUp: true)
        let after = Date().timeIntervalSince1970
        let stamped = try #require(stamp())
        #expect(stamped >= before.rounded(.down) && stamped <= after + 1, "\(stamped)")
    }
}

/// `assetd thumbnails --retry-failed` (ThumbnailRetry) on both stores: the failed
/// thumbnails are requeued, in batches, within the limit and the workspace, and a worker's
/// start makes them on a first attempt; a dry run lists them and changes nothing.
@Suite(.serialized) struct ThumbnailRetryTests {
    typealias Store = ThumbnailOutageTests.Store

    @Test(arguments: Store.all) func failedThumbnailsAreRequeuedAndMadeAgain(_ store: Store) throws {
        let records = try store.open()
        let objects = FakeObjectStore()
        var failed: [AssetRecord] = []
        for workspace: Int64 in [1, 1, 2, 1] {
            let asset = try ThumbnailOutageTests().readyAsset(records, objects, workspaceID: workspace)
            try records.queueThumbnail(assetID: asset.id)
            _ = try records.claimThumbnail(assetID: asset.id)
            #expect(try records.finishThumbnail(assetID: asset.id, etag: asset.etag, status: .failed,
                                                reason: "the decoder failed: cannot reach the decoder\n\u{1b}[31m (after 3 attempts)"))
            failed.append(asset)
        }
        var lines: [String] = []
        let dry = try ThumbnailRetry.run(records: records, limit: 10, workspaceID: 1, dryRun: true) { lines.append($0) }
        #expect(dry == ThumbnailRetry.Summary(failed: 3, requeued: 0))
        #expect(lines.first == "asset \(failed[0].id) (workspace 1): the decoder failed: cannot reach the decoder??[31m (after 3 attempts)")
        #expect(try records.pendingThumbnailCount() == 0, "a dry run changes nothing")

        lines = []
        let limited = try ThumbnailRetry.run(records: records, limit: 2, workspaceID: 1, dryRun: false) { lines.append($0) }
        #expect(limited == ThumbnailRetry.Summary(failed: 2, requeued: 2))
        #expect(lines == ["requeued 2 of 2 failed thumbnails so far"])
        #expect(try records.failedThumbnails(workspaceID: nil, afterID: 0, limit: 10).map(\.assetID) == [failed[2].id, failed[3].id])

        let rest = try ThumbnailRetry.run(records: records, limit: 10, workspaceID: nil, dryRun: false) { _ in }
        #expect(rest == ThumbnailRetry.Summary(failed: 2, requeued: 2))
        #expect(try records.pendingThumbnailCount() == 4)

        // The next start (SQLite) or a poller (PostgreSQL) queues them: made on attempt 1.
        let worker = ThumbnailWorker(records: records, objects: objects, detector: try ContentDetector(),
                                     decoder: ThumbnailOutageTests.OutageDecoder(outage: 0), concurrency: 1,
                                     scratchDirectory: try TestFiles.scratchDirectory("assetd-retry"), logger: Logger(label: "test"))
        defer { worker.stop(waitingUpTo: .seconds(2)) }
        #expect(try worker.resume() == 4)
        #expect(try ThumbnailOutageTests().waitFor(20) { try records.pendingThumbnailCount() == 0 })
        for asset in failed {
            #expect(try records.thumbnailState(assetID: asset.id) == ThumbnailState(status: .ready, reason: nil, attempts: 1))
        }
    }
}

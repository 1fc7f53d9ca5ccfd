import MediaInfo
import AssetStore
import Dispatch
import Foundation
import Glibc
import Logging
import Media
import Synchronization
import Testing
import TestFiles
import Thumbnails
@testable import AssetdApp

/// The media backfill (MediaBackfill) against a real SQLite store, the fake S3 and a fake
/// decoder whose answer each test scripts: what is final (the decoder refused the content)
/// and what is left for later (the decoder crashed, was unreachable, ran past its deadline).
@Suite(.serialized) struct MediaBackfillTests {
    /// Answers the facts of a source by its version byte (the PNG's last byte): the
    /// scripted failure, else facts naming it. Records the versions it was asked about.
    final class ScriptedDecoder: ThumbnailDecoding {
        let failures = Mutex<[UInt8: DecodeFailure]>([:])
        let seen = Mutex<[UInt8]>([])

        func thumbnail(ofFile descriptor: Int32, detectedType: String) throws(DecodeFailure) -> DecodedThumbnail {
            throw .crashed("no thumbnail in these tests")
        }

        func facts(ofFile descriptor: Int32, detectedType: String) throws(DecodeFailure) -> MediaMetadata {
            var info = stat()
            fstat(descriptor, &info)
            var last: UInt8 = 0
            _ = pread(descriptor, &last, 1, off_t(info.st_size - 1))
            seen.withLock { $0.append(last) }
            if let failure = failures.withLock({ $0[last] }) { throw failure }
            return MediaMetadata(width: Int(last) * 10, height: 7)
        }
    }

    let routes: RouteTests
    let decoder = ScriptedDecoder()
    let worker: ThumbnailWorker

    init() throws {
        let scratch = try TestFiles.scratchDirectory("assetd-backfill")
        let decoder = decoder
        var made: ThumbnailWorker?
        routes = try RouteTests(environment: ["ASSETD_MEDIA_BACKFILL_BATCH": "2"]) { records, store in
            let worker = ThumbnailWorker(records: records, objects: store, detector: try ContentDetector(), decoder: decoder,
                                         concurrency: 1, scratchDirectory: scratch, logger: Logger(label: "test"))
            made = worker
            return worker
        }
        worker = made!
    }

    var records: any RecordStore { routes.records }

    /// A ready asset with a ready thumbnail and no media (as before "v8: media metadata"),
    /// its object a PNG whose last byte is `version`.
    @discardableResult
    func oldAsset(version: UInt8) throws -> AssetRecord {
        try Self.oldAsset(version: version, in: routes)
    }

    static func oldAsset(version: UInt8, in routes: RouteTests) throws -> AssetRecord {
        let records = routes.records
        let created = try records.createAsset(NewAsset(workspaceID: 1, fileType: "image/png", fileExtension: "png", fileName: "a.png", size: 70))
        let bytes = ThumbnailVersionTests.png(version: version)
        routes.store.state.withLock {
            $0.objects[created.key] = bytes.count
            $0.contents[created.key] = bytes
        }
        let ready = try #require(try records.markAssetReady(id: created.id, size: Int64(bytes.count), etag: "\"e\(version)\"", sha256: nil,
                                                            thumbnail: .pending))
        _ = try records.claimThumbnail(assetID: ready.id)
        #expect(try records.finishThumbnail(assetID: ready.id, etag: "\"e\(version)\"", status: .ready, reason: nil))
        return ready
    }

    func media(_ asset: AssetRecord) throws -> MediaMetadata? {
        try records.asset(id: asset.id, workspaceID: 1)?.media
    }

    @Test func aDecoderCrashLeavesTheAssetForLaterAndOnlyARefusalIsFinal() throws {
        let crashed = try oldAsset(version: 1)
        let refused = try oldAsset(version: 2)
        let good = try oldAsset(version: 3)
        decoder.failures.withLock {
            $0[1] = .crashed("the decoder ran past its deadline (30 s) and was killed")
            $0[2] = .refused("no allowed image loader recognizes the content")
        }
        let summary = try MediaBackfill(worker: worker, logger: Logger(label: "test")).run(limit: 10)
        #expect(summary.examined == 3)
        #expect(summary.left == 1)
        #expect(summary.unreadable == 1)
        #expect(summary.recorded == 1)
        #expect(try media(crashed) == nil, "not recorded as unknown: a later run reads it again")
        #expect(try media(refused) == MediaMetadata(), "the content refused: all unknown, final")
        #expect(try media(good) == MediaMetadata(width: 30, height: 7))
        #expect(try records.assetsMissingMedia(limit: 10, workspaceID: nil, afterID: 0).map(\.id) == [crashed.id])
    }

    @Test func aRunStopsAfterThreeDecoderFailuresInARow() throws {
        for version: UInt8 in 1...6 { try oldAsset(version: version) }
        decoder.failures.withLock { failures in
            for version: UInt8 in 1...6 { failures[version] = .crashed("killed by SIGKILL") }
        }
        let summary = try MediaBackfill(worker: worker, logger: Logger(label: "test")).run(limit: 10)
        #expect(summary.decoderDown)
        #expect(summary.examined == 3)
        #expect(summary.left == 3)
        #expect(decoder.seen.withLock { $0 } == [1, 2, 3])
        #expect(try records.assetsMissingMedia(limit: 10, workspaceID: nil, afterID: 0).count == 6, "nothing recorded")
        // The decoder being down is no asset's fault: only the streak's first is counted.
        #expect(try records.assetsGivenUpOnMedia(workspaceID: nil, maxAttempts: 1) == 1)
    }

    /// The decoder unavailable (its socket down, the request not taken, the source not
    /// reopened: the attacker's review, medium) is no asset's fault: the run stops after 3
    /// as for crashes, and no run counts it, so that pass after pass gives up on nothing.
    @Test func anUnavailableDecoderGivesUpOnNothingOverManyRuns() throws {
        for version: UInt8 in 1...4 { try oldAsset(version: version) }
        decoder.failures.withLock { failures in
            for version: UInt8 in 1...4 { failures[version] = .unavailable("cannot reach the decoder at /run/x.sock: Connection refused") }
        }
        let backfill = MediaBackfill(worker: worker, logger: Logger(label: "test"))
        for run in 1...(MediaBackfill.maxAttempts + 1) {
            let summary = try backfill.run(limit: 10)
            #expect(summary.decoderDown, "run \(run)")
            #expect(summary.examined == 3 && summary.givenUp == 0, "run \(run): \(summary)")
        }
        #expect(try records.assetsGivenUpOnMedia(workspaceID: nil, maxAttempts: 1) == 0, "nothing counted")
        decoder.failures.withLock { $0 = [:] }
        #expect(try backfill.run(limit: 10).recorded == 4, "every asset read once the decoder is back")
    }

    /// A file on which the decoder crashes (or stalls) every time: counted once a run in
    /// the database, so that neither the next run nor a restart (the reconciler's cursor
    /// starts at 0 again) reads it for ever; given up on after MediaBackfill.maxAttempts,
    /// and read again once `--retry-failed` cleared the counts.
    @Test func anAssetTheDecoderFailsOnEveryTimeIsGivenUpOnAndRetriedOnDemand() throws {
        let failing = try oldAsset(version: 1)
        try oldAsset(version: 2)
        decoder.failures.withLock { $0[1] = .crashed("the decoder ran past its deadline (30 s) and was killed") }
        let backfill = MediaBackfill(worker: worker, logger: Logger(label: "test"))
        for run in 1...MediaBackfill.maxAttempts {
            let summary = try backfill.run(limit: 10)
            #expect(summary.left == 1)
            #expect(summary.givenUp == (run == MediaBackfill.maxAttempts ? 1 : 0), "run \(run)")
        }
        #expect(decoder.seen.withLock { $0 } == [1, 2, 1, 1])
        #expect(try backfill.run(limit: 10).examined == 0, "given up on: not read again")
        let reconciler = Reconciler(service: routes.app.service, interval: .seconds(60))
        reconciler.pass()
        #expect(decoder.seen.withLock { $0 }.count == 4, "a new reconciler (a restart) does not read it either")
        #expect(try records.assetsGivenUpOnMedia(workspaceID: nil, maxAttempts: MediaBackfill.maxAttempts) == 1)
        #expect(try media(failing) == nil, "not recorded as unknown")

        #expect(try records.clearMediaAttempts(workspaceID: nil) == 1)
        decoder.failures.withLock { $0[1] = nil }
        let summary = try backfill.run(limit: 10)
        #expect(summary.recorded == 1)
        #expect(try media(failing) == MediaMetadata(width: 10, height: 7))
    }

    /// Failures in a row: the first counted at once, the others only when a later asset
    /// of the same run reads (the decoder works: they were the files'). A streak that no
    /// success follows (the run's end, here its limit) counts its first only: the rest may
    /// be the decoder's or the host's.
    @Test(arguments: [true, false]) func failuresInARowAreCountedWhenTheDecoderReadsALaterAsset(_ laterReads: Bool) throws {
        for version: UInt8 in 1...3 { try oldAsset(version: version) }
        decoder.failures.withLock {
            $0[1] = .crashed("killed by SIGSEGV")
            $0[2] = .crashed("the decoder ran past its deadline (30 s) and was killed")
        }
        let summary = try MediaBackfill(worker: worker, logger: Logger(label: "test")).run(limit: laterReads ? 10 : 2)
        #expect(summary.recorded == (laterReads ? 1 : 0))
        #expect(!summary.decoderDown)
        #expect(try records.assetsGivenUpOnMedia(workspaceID: nil, maxAttempts: 1) == (laterReads ? 2 : 1))
    }

    @Test func theReconcilerGoesOnFromWhereItsLastPassStopped() throws {
        for version: UInt8 in 1...3 { try oldAsset(version: version) }
        // Versions 1 and 2 cannot be read for now (an archived object, say): each pass
        // must not spend its batch (2 here) on them again before reaching version 3.
        decoder.failures.withLock {
            $0[1] = .crashed("busy")
            $0[2] = .crashed("busy")
        }
        let reconciler = Reconciler(service: routes.app.service, interval: .seconds(60))
        reconciler.pass()
        #expect(decoder.seen.withLock { $0 } == [1, 2])
        reconciler.pass()
        #expect(decoder.seen.withLock { $0 } == [1, 2, 3], "the next pass goes on past the cursor")
        reconciler.pass()
        #expect(decoder.seen.withLock { $0 } == [1, 2, 3, 1, 2], "the end reached: the next pass starts over")
    }

    @Test func theBackfillTakesADecoderSlot() throws {
        let asset = try oldAsset(version: 4)
        // The one slot (ASSETD_THUMBNAIL_CONCURRENCY 1) is a thumbnail task's meanwhile.
        worker.decoderSlots.wait()
        let done = DispatchSemaphore(value: 0)
        let worker = worker
        Thread.detachNewThread {
            _ = MediaBackfill(worker: worker, logger: Logger(label: "test")).backfill(asset)
            done.signal()
        }
        Thread.sleep(forTimeInterval: 0.3)
        #expect(decoder.seen.withLock { $0 }.isEmpty, "no second decoder child while the slot is taken")
        worker.decoderSlots.signal()
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(decoder.seen.withLock { $0 } == [4])
        #expect(try media(asset) == MediaMetadata(width: 40, height: 7))
    }

    /// `assetd backfill-media` is a command: on PostgreSQL, no upload cache (its LISTEN
    /// thread, still in libpq at exit, crashed a command once); `serve` keeps it.
    @Test func theBackfillCommandOpensPostgreSQLWithoutTheUploadCache() throws {
        let configuration = try Configuration(environment: [
            "AWS_BUCKET": "b", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
            "ASSETD_JWT_SECRET": RouteTests.secret, "ASSETD_DATABASE": "postgres://assetd@127.0.0.1:5432/assetd",
            "ASSETD_TMP_DIR": NSTemporaryDirectory(),
        ])
        #expect(configuration.databaseUploadCache)
        #expect(Bootstrap.postgresSettings(configuration, command: true).uploadCache == false)
        #expect(Bootstrap.postgresSettings(configuration, command: false).uploadCache)
    }
}

import AssetStore
import Foundation
import Glibc
import JSON
import Logging
import Media
import MediaInfo
import Testing
import TestFiles
import Thumbnails
@testable import AssetdApp

/// CONTRACT.md: "gps is null unless ASSETD_KEEP_GPS=on": in the asset JSON (also for
/// coordinates recorded while it was on) and in the events that carry media.
@Suite(.serialized) struct KeepGPSTests {
    static let withGPS = MediaMetadata(width: 3, height: 2, gpsLatitude: 48.5, gpsLongitude: -2.25)

    /// A ready asset whose media, GPS included, was recorded (as while ASSETD_KEEP_GPS was on).
    func assetWithGPS(_ routes: RouteTests) throws -> AssetRecord {
        let created = try routes.records.createAsset(NewAsset(workspaceID: 1, fileType: "image/jpeg", fileExtension: "jpg",
                                                              fileName: "a.jpg", size: 10))
        let ready = try #require(try routes.records.markAssetReady(id: created.id, size: 10, etag: "\"e\"", sha256: nil, thumbnail: .none))
        #expect(try routes.records.recordMedia(assetID: ready.id, etag: ready.etag, media: Self.withGPS, now: Date()))
        return ready
    }

    /// The `media` of the asset, as GET /api/assets/{id} and the listing answer it.
    func shownMedia(_ routes: RouteTests, _ asset: AssetRecord) -> (one: JSONValue?, listed: JSONValue?) {
        let (status, one) = routes.call("GET", "/api/assets/\(asset.id)", "workspaceId=1")
        #expect(status == 200)
        let (_, list) = routes.call("GET", "/api/assets", "workspaceId=1")
        return (one["asset"]?["media"], list["assets"]?.arrayValue?.first?["media"])
    }

    @Test func theAssetJSONShowsRecordedCoordinatesOnlyWhileKeepGPSIsOn() throws {
        let off = try RouteTests()
        let shown = shownMedia(off, try assetWithGPS(off))
        for media in [shown.one, shown.listed] {
            #expect(media?["width"] == 3)
            #expect(media?["gps"] == .null, "ASSETD_KEEP_GPS is off: \(String(describing: media))")
        }
        let on = try RouteTests(environment: ["ASSETD_KEEP_GPS": "on"])
        let kept = shownMedia(on, try assetWithGPS(on))
        for media in [kept.one, kept.listed] {
            #expect(media?["gps"]?["latitude"] == .number("48.5"))
            #expect(media?["gps"]?["longitude"] == .number("-2.25"))
        }
    }

    /// Answers facts with coordinates, whatever it was asked: assetd must drop them itself
    /// unless ASSETD_KEEP_GPS is on.
    final class GPSDecoder: ThumbnailDecoding {
        func thumbnail(ofFile descriptor: Int32, detectedType: String) throws(DecodeFailure) -> DecodedThumbnail {
            throw .crashed("no thumbnail in these tests")
        }

        func facts(ofFile descriptor: Int32, detectedType: String) throws(DecodeFailure) -> MediaMetadata {
            MediaMetadata(width: 5, height: 4, gpsLatitude: 10.5, gpsLongitude: 20.25)
        }
    }

    /// The media backfill's asset.updated event (the one event that carries media) and the
    /// media recorded, with the worker made as `makeWorker` says.
    func backfilledEvent(environment: [String: String] = [:],
                         makeWorker: @escaping (any RecordStore, FakeObjectStore, String) -> ThumbnailWorker) throws -> (event: JSONValue?, media: MediaMetadata?) {
        let scratch = try TestFiles.scratchDirectory("assetd-gps")
        var made: ThumbnailWorker?
        let routes = try RouteTests(environment: environment) { records, store in
            let worker = makeWorker(records, store, scratch)
            made = worker
            return worker
        }
        let records = routes.records
        let ready = try MediaBackfillTests.oldAsset(version: 1, in: routes)
        // From here on: the backfill's event alone is queued for the sink.
        try records.activateEventSinks(["hook"], now: Date())
        let summary = try MediaBackfill(worker: try #require(made), logger: Logger(label: "test")).run(limit: 10)
        #expect(summary.recorded == 1)
        let now = Date()
        let updated = try records.claimDeliveries(sink: "hook", limit: 100, now: now, leaseUntil: now.addingTimeInterval(30))
            .filter { $0.type == .assetUpdated }
        #expect(updated.count == 1)
        let event = try updated.first.map { try JSONParser.parse($0.payload) }
        return (event, try records.asset(id: ready.id, workspaceID: 1)?.media)
    }

    @Test func theBackfillsEventCarriesNoCoordinatesWhileKeepGPSIsOff() throws {
        let (event, media) = try backfilledEvent { records, store, scratch in
            ThumbnailWorker(records: records, objects: store, detector: try! ContentDetector(), decoder: GPSDecoder(),
                            concurrency: 1, scratchDirectory: scratch, logger: Logger(label: "test"))
        }
        #expect(event?["data"]?["media"]?["width"] == 5)
        #expect(event?["data"]?["media"]?["gps"] == .null, "\(String(describing: event))")
        #expect(media == MediaMetadata(width: 5, height: 4), "nor are they recorded")
    }

    @Test func theBackfillsEventCarriesCoordinatesWithKeepGPSOn() throws {
        let (event, media) = try backfilledEvent(environment: ["ASSETD_KEEP_GPS": "on"]) { records, store, scratch in
            ThumbnailWorker(records: records, objects: store, detector: try! ContentDetector(), decoder: GPSDecoder(),
                            concurrency: 1, scratchDirectory: scratch, keepGPS: true, logger: Logger(label: "test"))
        }
        #expect(event?["data"]?["media"]?["gps"]?["latitude"] == .number("10.5"))
        #expect(media?.gpsLongitude == 20.25)
    }
}

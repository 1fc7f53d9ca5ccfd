import MediaInfo
import Foundation
import Glibc
import Testing
@testable import Thumbnails

/// The media facts' wire record (issue 19): what a decoder child may send, and how
/// strictly assetd reads it (the child is untrusted); and the child's own readings of
/// libvips' EXIF strings (captured from `vipsheader -a` on libvips 8.14).
@Suite struct MediaMetadataTests {
    func parse(_ text: String, keepGPS: Bool = false) -> MediaMetadata? {
        MediaMetadata(decoding: Array(text.utf8), keepGPS: keepGPS)
    }

    @Test func aRecordRoundTrips() throws {
        let facts = MediaMetadata(width: 1000, height: 1600, durationSeconds: 2.5, pages: 3, takenAt: "2024-05-06T07:08:09",
                               cameraMake: "Canon", cameraModel: "EOS 5D (Mark IV)", gpsLatitude: 52.52, gpsLongitude: -1.5)
        #expect(MediaMetadata(decoding: facts.encoded, keepGPS: true) == facts)
        var withoutGPS = facts
        (withoutGPS.gpsLatitude, withoutGPS.gpsLongitude) = (nil, nil)
        #expect(MediaMetadata(decoding: facts.encoded, keepGPS: false) == withoutGPS, "GPS is dropped unless kept")
        #expect(parse("") == MediaMetadata())
    }

    @Test(arguments: [
        "width=10\n",                                  // a width without a height
        "width=10\nheight=0\n",                        // zero
        "width=10\nheight=2000000\n",                  // over 2^20
        "width=-1\nheight=10\n", "width=+1\nheight=10\n", "width=1e3\nheight=10\n",
        "pages=0\n", "pages=abc\n",
        "duration_s=nan\n", "duration_s=inf\n", "duration_s=-1\n", "duration_s=1e300\n",
        "taken_at=2024:05:06 07:08:09\n", "taken_at=2024-13-06T07:08:09\n", "taken_at=2024-05-06T25:08:09\n",
        "taken_at=0000-00-00T00:00:00\n",
        "camera_make=\n", "camera_make= Canon\n", "camera_make=Ca\u{7}non\n", "camera_make=Ca\u{85}non\n",
        "camera_make=Ca\u{202E}non\n", "camera_model=EOS\u{2066}R\n", "camera_model=EOS\u{2028}R\n", // bidi, separators
        "camera_make=" + String(repeating: "x", count: 129) + "\n",
        "gps_latitude=91\ngps_longitude=0\n", "gps_latitude=10\n",
        "width=10\nwidth=10\nheight=1\n",              // a key twice
        "colour=red\n",                                // an unknown key
        "width=10\nheight=10",                         // no final newline
        "\nwidth=10\nheight=10\n",                     // an empty line
    ])
    func aMalformedRecordIsRefused(_ text: String) {
        #expect(parse(text, keepGPS: true) == nil, "\(text.debugDescription)")
    }

    @Test func aRecordOverItsBoundOrNotUTF8IsRefused() {
        #expect(MediaMetadata(decoding: Array(repeating: UInt8(ascii: "a"), count: 5000), keepGPS: false) == nil)
        #expect(MediaMetadata(decoding: Array("camera_make=".utf8) + [0xC3, 0x28, 0x0A], keepGPS: false) == nil)
    }

    @Test func libvipsEXIFStringsAreRead() {
        #expect(MediaMetadata.exifASCII("Canon (Canon, ASCII, 6 components, 6 bytes)") == "Canon")
        #expect(MediaMetadata.exifASCII("EOS 5D (Mark IV) (EOS 5D (Mark IV), ASCII, 17 components, 17 bytes)") == "EOS 5D (Mark IV)")
        #expect(MediaMetadata.exifASCII("6 (Right-top, Short, 1 components, 2 bytes)") == nil, "not ASCII")
        #expect(MediaMetadata.exifASCII("Canon (Nikon, ASCII, 6 components, 6 bytes)") == nil, "the two copies disagree")
        #expect(MediaMetadata.exifTimestamp("2024:05:06 07:08:09") == "2024-05-06T07:08:09")
        #expect(MediaMetadata.exifTimestamp("0000:00:00 00:00:00") == nil)
        #expect(MediaMetadata.exifTimestamp("2024-05-06 07:08:09") == nil)
        let latitude = MediaMetadata.exifCoordinate("52/1 31/1 25/2 (52, 31, 12.5, Rational, 3 components, 24 bytes)", reference: "N")
        #expect(abs((latitude ?? 0) - (52 + 31.0 / 60 + 12.5 / 3600)) < 1e-9)
        #expect(MediaMetadata.exifCoordinate("1/1 30/1 0/1 (1, 30, 0, Rational, 3 components, 24 bytes)", reference: "W") == -1.5)
        #expect(MediaMetadata.exifCoordinate("1/1 30/1 0/0 (...)", reference: "W") == nil, "a zero denominator")
        #expect(MediaMetadata.exifCoordinate("1/1 30/1 0/1 (...)", reference: "X") == nil)
    }

    @Test func ffprobeOutputIsRead() {
        #expect(MediaMetadata.probed("width=320\nheight=240\nduration=2.500000\n")
                == MediaMetadata(width: 320, height: 240, durationSeconds: 2.5))
        #expect(MediaMetadata.probed("width=320\nduration=N/A\n") == MediaMetadata())
    }

    /// With the thumbnail, and alone (the backfill's facts-only mode: no JPEG).
    @Test func theDecoderSendsTheFactsOfAnImage() throws {
        let directory = TestImages.directory()
        let decoder = try IsolatedThumbnailer(settings: .init(endpoint: .spawn(executable: IsolatedThumbnailer.executableBesideSelf()),
                                                              scratch: directory))
        let path = TestImages.write(TestImages.png(width: 300, height: 200), to: directory + "/facts.png")
        let source = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        defer { close(source) }
        let decoded = try decoder.thumbnail(ofFile: source, detectedType: "image/png")
        #expect(decoded.jpeg.starts(with: [0xFF, 0xD8, 0xFF]))
        #expect(decoded.facts == MediaMetadata(width: 300, height: 200))
        #expect(try decoder.facts(ofFile: source, detectedType: "image/png") == MediaMetadata(width: 300, height: 200))
        // A PNG signature and then garbage: refused (final), not a crash.
        let broken = TestImages.write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array(repeating: 0x41, count: 200),
                                      to: directory + "/broken.png")
        let brokenSource = Glibc.open(broken, O_RDONLY | O_CLOEXEC)
        defer { close(brokenSource) }
        #expect {
            _ = try decoder.facts(ofFile: brokenSource, detectedType: "image/png")
        } throws: { error in
            if case .refused = error as? DecodeFailure { return true }
            return false
        }
    }

    @Test func aHostileChildsFactsOnlyAnswerIsChecked() throws {
        let directory = TestImages.directory()
        let path = TestImages.write(TestImages.png(width: 30, height: 20), to: directory + "/any-facts.png")
        let source = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        defer { close(source) }
        func decoder(_ raw: [UInt8]) throws -> IsolatedThumbnailer {
            try IsolatedThumbnailer(settings: .init(endpoint: .socket(path: try hostileDecoder(directory, answer: raw)), timeoutSeconds: 5))
        }
        let record = Array("width=30\nheight=20\n".utf8)
        let facts = DecoderProtocol.header([DecoderProtocol.media], record.count) + record
        let done = DecoderProtocol.header([DecoderProtocol.factsDone], 0)
        #expect(try decoder(facts + done).facts(ofFile: source, detectedType: "image/png") == MediaMetadata(width: 30, height: 20))
        let malformed = DecodeFailure.crashed("the decoder's answer is malformed")
        // D with a payload, D without facts, a JPEG where facts alone were asked for.
        for raw in [facts + DecoderProtocol.header([DecoderProtocol.factsDone], 3) + [1, 2, 3], done, answer(facts: "width=30\nheight=20\n")] {
            #expect(throws: malformed) { try decoder(raw).facts(ofFile: source, detectedType: "image/png") }
        }
        // D is no answer to a thumbnail request.
        #expect(throws: malformed) { try decoder(facts + done).thumbnail(ofFile: source, detectedType: "image/png") }
        // Refused stays refused.
        let reason = Array("not an image".utf8)
        #expect(throws: DecodeFailure.refused("not an image")) {
            try decoder(DecoderProtocol.header([DecoderProtocol.refused], reason.count) + reason).facts(ofFile: source, detectedType: "image/png")
        }
    }

    /// A fake decoder on a Unix socket that answers every connection with `answer`, as a
    /// compromised child could. Returns the socket's path.
    func hostileDecoder(_ directory: String, answer: [UInt8]) throws -> String {
        let path = directory + "/hostile-\(UInt32.random(in: 0...UInt32.max)).sock"
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        #expect(ZygoteProcess.fill(&address, path: path))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && listen(listener, 4) == 0)
        Thread.detachNewThread {
            while true {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { return }
                var request = [UInt8](repeating: 0, count: 8192)
                _ = recv(connection, &request, request.count, 0)
                _ = DecoderProtocol.write(connection, answer)
                close(connection)
            }
        }
        return path
    }

    func answer(facts: String) -> [UInt8] {
        let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xD9]
        let record = Array(facts.utf8)
        return DecoderProtocol.header([DecoderProtocol.media], record.count) + record + DecoderProtocol.header([DecoderProtocol.jpeg], jpeg.count) + jpeg
    }

    @Test func aHostileChildsFactsAreRefusedOrStripped() throws {
        let directory = TestImages.directory()
        let path = TestImages.write(TestImages.png(width: 30, height: 20), to: directory + "/any.png")
        let source = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        defer { close(source) }
        func decode(_ facts: String, keepGPS: Bool = false, raw: [UInt8]? = nil) throws(DecodeFailure) -> DecodedThumbnail {
            let socketPath = try! hostileDecoder(directory, answer: raw ?? answer(facts: facts))
            let decoder = try IsolatedThumbnailer(settings: .init(endpoint: .socket(path: socketPath), timeoutSeconds: 5, keepGPS: keepGPS))
            return try decoder.thumbnail(ofFile: source, detectedType: "image/png")
        }
        // Well formed: kept, GPS dropped unless ASSETD_KEEP_GPS.
        let fine = "width=30\nheight=20\ngps_latitude=1.5\ngps_longitude=2.5\n"
        #expect(try decode(fine).facts == MediaMetadata(width: 30, height: 20))
        #expect(try decode(fine, keepGPS: true).facts == MediaMetadata(width: 30, height: 20, gpsLatitude: 1.5, gpsLongitude: 2.5))
        // Malformed or oversized: the attempt is lost, nothing is recorded.
        for bad in ["width=99999999\nheight=1\n", "camera_make=\u{1b}[31mred\n", "x=1\n"] {
            #expect(throws: DecodeFailure.crashed("the decoder's media facts are malformed")) { try decode(bad) }
        }
        let huge = DecoderProtocol.header([DecoderProtocol.media], 1 << 30)
        #expect(throws: DecodeFailure.crashed("the decoder's media facts are malformed")) { try decode("", raw: huge) }
        // Two records of facts: the second is no JPEG, so a malformed answer.
        let twice = answer(facts: "pages=1\n").prefix(5 + 8) + answer(facts: "pages=2\n")
        #expect(throws: DecodeFailure.self) { try decode("", raw: Array(twice)) }
    }
}

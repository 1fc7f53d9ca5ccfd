import Foundation
import Testing
@testable import Thumbnails

@Suite struct ThumbnailerTests {
    let thumbnailer = try! Thumbnailer(settings: .init())
    let directory = TestImages.directory()

    /// Width and height of a JPEG, from its SOF0/SOF2 segment.
    func jpegSize(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        var i = 2
        while i + 9 < bytes.count, bytes[i] == 0xFF {
            let marker = bytes[i + 1]
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            if marker == 0xC0 || marker == 0xC2 {
                return (Int(bytes[i + 7]) << 8 | Int(bytes[i + 8]), Int(bytes[i + 5]) << 8 | Int(bytes[i + 6]))
            }
            i += 2 + length
        }
        return nil
    }

    @Test func theLongestEdgeBecomesTheSetSize() throws {
        let path = TestImages.write(TestImages.png(width: 1200, height: 300), to: directory + "/wide.png")
        #expect(Thumbnailer.loader(forFile: path) == "pngload")
        let jpeg = try thumbnailer.thumbnail(ofFile: path, detectedType: "image/png", scratch: directory)
        #expect(Array(jpeg.prefix(3)) == [0xFF, 0xD8, 0xFF])
        let size = try #require(jpegSize(jpeg))
        #expect(size.width == 512)
        #expect(size.height == 128)
    }

    @Test func aSmallImageIsNotEnlarged() throws {
        let path = TestImages.write(TestImages.png(width: 40, height: 30), to: directory + "/small.png")
        let jpeg = try thumbnailer.thumbnail(ofFile: path, detectedType: "image/png", scratch: directory)
        let size = try #require(jpegSize(jpeg))
        #expect(size.width == 40 && size.height == 30)
    }

    @Test func aFileNeverReachesTheLoaderOfAnotherType() throws {
        let path = TestImages.write(TestImages.png(width: 20, height: 20), to: directory + "/png-as-jpeg.jpg")
        #expect(throws: ThumbnailError("the content would be read by pngload, not jpegload")) {
            try thumbnailer.thumbnail(ofFile: path, detectedType: "image/jpeg", scratch: directory)
        }
    }

    @Test(arguments: [("svg", TestImages.svg, "svgload"), ("miff", TestImages.miff, "magickload")])
    func untrustedLoadersAreBlocked(name: String, bytes: [UInt8], loader: String) throws {
        let path = TestImages.write(bytes, to: directory + "/\(name).jpg")
        // Declared a JPEG: refused before any loader opens it.
        #expect(throws: ThumbnailError("the content would be read by \(loader), not jpegload")) {
            try thumbnailer.thumbnail(ofFile: path, detectedType: "image/jpeg", scratch: directory)
        }
        // And libvips itself refuses to run that loader: it is blocked.
        let error = #expect(throws: ThumbnailError.self) { try Vips.header(ofFile: path) }
        #expect(error?.description.contains("blocked") == true, "\(error.map(String.init(describing:)) ?? "no error")")
    }

    @Test func aDecompressionBombFailsFromItsHeader() throws {
        let path = TestImages.write(TestImages.png(width: 30_000, height: 30_000, bomb: true), to: directory + "/bomb.png")
        let clock = ContinuousClock()
        let started = clock.now
        let error = #expect(throws: ThumbnailError.self) {
            try thumbnailer.thumbnail(ofFile: path, detectedType: "image/png", scratch: directory)
        }
        #expect(error?.description.hasPrefix("image too large") == true)
        #expect(clock.now - started < .seconds(1))
    }

    @Test func aTypeWithoutAThumbnailIsRefused() {
        #expect(!Thumbnailer.makesThumbnail(of: "text/plain"))
        #expect(Thumbnailer.makesThumbnail(of: "video/mp4"))
        #expect(Thumbnailer.makesThumbnail(of: "application/pdf"))
    }

    @Test func aProgramThatRunsPastItsDeadlineIsKilled() throws {
        let clock = ContinuousClock()
        let started = clock.now
        let error = #expect(throws: ThumbnailError.self) {
            _ = try VideoFrame.run(["sleep", "10"], timeout: .milliseconds(300))
        }
        #expect(error?.description.contains("was killed") == true)
        #expect(clock.now - started < .seconds(3))
    }

    @Test func aMissingProgramIsAnError() {
        #expect(throws: ThumbnailError.self) {
            let frame = try VideoFrame.memoryFile("frame")
            defer { close(frame) }
            try VideoFrame.extract(from: "/dev/null", type: "video/mp4", into: frame, executable: "/nonexistent/ffmpeg")
        }
    }
}
